"""The FHIR R4 reference grammar, in one place: every module that reads a Reference parses it here.

R4 (http://hl7.org/fhir/R4/references.html#literal) gives the regular expression a RESTful
literal reference matches:

    ((http|https)://([A-Za-z0-9\\-\\\\\\.\\:\\%\\$]*\\/)+)?(Account|...|VisionPrescription)
        \\/[A-Za-z0-9\\-\\.]{1,64}(\\/_history\\/[A-Za-z0-9\\-\\.]{1,64})?

The type alternatives are the R4 resource types, read from the vendored resource-types value set
(directory/profiles/data/value-sets.json) rather than spelled out a second time. Besides RESTful
references a Reference.reference may be `#id` (a contained resource; `#` alone the container), a
`urn:uuid:`/`urn:oid:` (a Bundle entry's fullUrl) or, in a transaction, `Type?criteria` (a
conditional reference).

This module imports nothing from the project: the registry, the search parameters and the
validator all stand on it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

# The FHIR id datatype: 1 to 64 letters, digits, '-' and '.'.
ID_REGEX = r"[A-Za-z0-9\-.]{1,64}"
ID_PATTERN = re.compile(rf"^{ID_REGEX}$")

_VALUE_SETS = Path(__file__).parent / "profiles" / "data" / "value-sets.json"
# In the resource-types value set but not a type a reference can name (abstract).
_ABSTRACT = frozenset({"Resource", "DomainResource"})

# The spec's base: http(s)://, then path segments of its character class, each ending in '/'.
_BASE = r"(?P<base>(?:http|https)://(?:[A-Za-z0-9\-\\.:%$]*/)+)?"
_RESTFUL = re.compile(
    rf"{_BASE}(?P<type>[A-Za-z]+)/(?P<id>{ID_REGEX})(?:/_history/(?P<version>{ID_REGEX}))?"
)
_CONDITIONAL = re.compile(r"(?P<type>[A-Za-z]+)\?(?P<criteria>.*)", re.DOTALL)
_CONTAINED = re.compile(rf"#(?P<id>{ID_REGEX})?")
TEMPORARY_PREFIXES = ("urn:uuid:", "urn:oid:")
# A Bundle entry's fullUrl (R4 uuid and oid datatypes).
_UUID = re.compile(r"urn:uuid:[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_OID = re.compile(r"urn:oid:[0-2](?:\.(?:0|[1-9][0-9]*))+")


@cache
def resource_type_names() -> frozenset[str]:
    """Every concrete R4 resource type name: what a reference's `Type/` segment may be."""
    names = json.loads(_VALUE_SETS.read_text())["resource-types"]
    return frozenset(names) - _ABSTRACT


@dataclass(frozen=True)
class Reference:
    """One parsed Reference.reference.

    kind: "relative" (`Type/id`), "absolute" (a URL ending in `Type/id`), "contained" (`#id`,
    id None for `#` itself), "temporary" (urn:uuid/urn:oid: a Bundle entry) or "conditional"
    (`Type?criteria`: type and criteria set, id None).
    """

    kind: str
    type: str | None = None
    id: str | None = None
    version: str | None = None
    base: str | None = None  # "https://example.org/fhir/" of an absolute reference
    criteria: str | None = None

    @property
    def is_local(self) -> bool:
        """Names a resource inside the referrer (contained, or the container itself)."""
        return self.kind == "contained"

    @property
    def is_temporary(self) -> bool:
        return self.kind == "temporary"

    @property
    def external(self) -> bool:
        """An absolute URL: it may name another server's resource, never resolved locally."""
        return self.kind == "absolute"

    @property
    def restful(self) -> bool:
        """`Type/id`, relative or absolute: what the reference index stores."""
        return self.kind in ("relative", "absolute")

    @property
    def key(self) -> tuple[str, str]:
        """(type, id) of a RESTful reference."""
        if not self.restful or self.type is None or self.id is None:
            raise ValueError(f"a {self.kind} reference has no (type, id)")
        return self.type, self.id


def parse(text: object) -> Reference | None:
    """The reference `text` is, by the R4 grammar; None if it is none of the forms (or not a
    string)."""
    return _parse(text) if isinstance(text, str) and text else None


@lru_cache(maxsize=8192)
def _parse(text: str) -> Reference | None:
    # Cached: a directory repeats its references (every role names the same organizations).
    if text.startswith("#"):
        match = _CONTAINED.fullmatch(text)
        return Reference("contained", id=match["id"]) if match else None
    if text.startswith(TEMPORARY_PREFIXES):
        ok = _UUID.fullmatch(text) or _OID.fullmatch(text)
        return Reference("temporary") if ok else None
    conditional = _CONDITIONAL.fullmatch(text)
    if conditional is not None:
        if conditional["type"] not in resource_type_names():
            return None
        return Reference("conditional", type=conditional["type"], criteria=conditional["criteria"])
    return parse_restful(text)


def parse_restful(text: object) -> Reference | None:
    """`[base]Type/id[/_history/vid]` by the spec's expression, the type a known R4 type."""
    match = _RESTFUL.fullmatch(text) if isinstance(text, str) else None
    if match is None or match["type"] not in resource_type_names():
        return None
    base = match["base"]
    return Reference(
        "absolute" if base else "relative",
        type=match["type"],
        id=match["id"],
        version=match["version"],
        base=base,
    )


def restful_key(text: object) -> tuple[str, str] | None:
    """(type, id) of a RESTful reference (relative or absolute), else None."""
    parsed = parse_restful(text)
    return parsed.key if parsed is not None else None
