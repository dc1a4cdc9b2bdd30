"""Convert the NDH IG's FSH SearchParameter instances into a FHIR R4 Bundle (type collection).

Usage: python ndh_fsh_to_bundle.py Base-SearchPrameters.fsh > ndh-search-parameters.json

NDH (HL7/fhir-us-ndh, `input/fsh/`) is not published as an npm package, so its definitions are
read from FSH. Only the handful of FSH forms the NDH SearchParameter file uses are understood:
`Instance:` blocks of `InstanceOf: SearchParameter` holding `* path = value` assignment rules,
with `[0]`, `[+]` and `[=]` indexes, `#code`, `"string"` and `true`/`false` values, and `//`
comments. Anything else raises, so a new FSH construct upstream is noticed rather than dropped.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

# The directory's resource types; a parameter on none of them (e.g. VerificationResult) is skipped.
SUPPORTED_BASES = (
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Location",
    "Endpoint",
    "HealthcareService",
    "OrganizationAffiliation",
    "InsurancePlan",
    "Group",
)
# SearchParameter elements that hold lists in FHIR R4, even when FSH assigns one without an index.
LIST_ELEMENTS = {"base", "target", "chain", "modifier", "comparator", "component"}
# Element order in the output, the order of the R4 SearchParameter definition.
ELEMENT_ORDER = [
    "resourceType",
    "id",
    "url",
    "name",
    "derivedFrom",
    "status",
    "description",
    "code",
    "base",
    "type",
    "expression",
    "xpathUsage",
    "target",
    "multipleOr",
    "multipleAnd",
    "comparator",
    "modifier",
    "chain",
    "component",
]

RULE = re.compile(r"^\*\s+(?P<path>[A-Za-z][\w.\[\]=+]*)\s*=\s*(?P<value>.+?)\s*$")
STEP = re.compile(r"^(?P<name>[A-Za-z]\w*)(?:\[(?P<index>\d+|\+|=)\])?$")


def parse_value(text: str) -> str | bool:
    """An FSH value: `#code`, `"string"`, `true` or `false`."""
    if text.startswith("#"):
        return text[1:]
    if text.startswith('"') and text.endswith('"'):
        return json.loads(text)  # FSH strings escape like JSON ones
    if text in ("true", "false"):
        return text == "true"
    raise ValueError(f"unsupported FSH value: {text}")


def assign(resource: dict, path: str, value: object, cursors: dict) -> None:
    """Apply one `* a[+].b = value` rule; `cursors` remembers the current index of each list."""
    node = resource
    steps = path.split(".")
    prefix = ""
    for position, step in enumerate(steps):
        match = STEP.match(step)
        if not match:
            raise ValueError(f"unsupported FSH path: {path}")
        name, index = match["name"], match["index"]
        prefix = f"{prefix}.{name}" if prefix else name
        last = position == len(steps) - 1
        if index is None and (name not in LIST_ELEMENTS or position > 0):
            if last:
                node[name] = value
                return
            node = node.setdefault(name, {})
            continue
        items = node.setdefault(name, [])
        slot = _slot(items, index, cursors, prefix)
        if last:
            items[slot] = value
            return
        if not isinstance(items[slot], dict):
            items[slot] = {}
        node = items[slot]


def _slot(items: list, index: str | None, cursors: dict, key: str) -> int:
    if index == "+":
        slot = len(items)
    elif index == "=":
        slot = cursors[key]
    else:
        slot = int(index or 0)
    while len(items) <= slot:
        items.append(None)
    cursors[key] = slot
    return slot


def instances(text: str) -> Iterator[dict]:
    """Yield the SearchParameter dict of every `InstanceOf: SearchParameter` block."""
    current: dict | None = None
    cursors: dict = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("//"):
            continue
        if line.startswith("Instance:"):
            if current is not None:
                yield current
            current = {"resourceType": "SearchParameter", "id": line.split(":", 1)[1].strip()}
            cursors = {}
        elif line.startswith("InstanceOf:"):
            if line.split(":", 1)[1].strip() != "SearchParameter":
                raise ValueError(f"not a SearchParameter instance: {line}")
        elif line.startswith(("Usage:", "Title:", "Description:")):
            continue  # instance metadata; the resource carries its own description rule
        elif line.startswith("*"):
            match = RULE.match(line)
            if not match or current is None:
                raise ValueError(f"unsupported FSH rule: {line}")
            assign(current, match["path"], parse_value(match["value"]), cursors)
        else:
            raise ValueError(f"unsupported FSH line: {line}")
    if current is not None:
        yield current


def ordered(resource: dict) -> dict:
    unknown = set(resource) - set(ELEMENT_ORDER)
    if unknown:
        raise ValueError(f"{resource['id']}: unexpected elements {sorted(unknown)}")
    return {key: resource[key] for key in ELEMENT_ORDER if key in resource}


def convert(text: str) -> tuple[list[dict], list[dict]]:
    """(kept, skipped) SearchParameters; kept ones have their bases cut to the supported types."""
    kept, skipped = [], []
    for resource in instances(text):
        bases = [b for b in resource["base"] if b in SUPPORTED_BASES]
        if not bases:
            skipped.append(resource)
            continue
        kept.append(ordered({**resource, "base": bases}))
    return kept, skipped


def bundle(resources: list[dict]) -> dict:
    return {
        "resourceType": "Bundle",
        "id": "ndh-search-parameters",
        "type": "collection",
        "entry": [{"fullUrl": r["url"], "resource": r} for r in resources],
    }


def main(argv: list[str]) -> int:
    kept, skipped = convert(Path(argv[1]).read_text(encoding="utf-8"))
    json.dump(bundle(kept), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    for resource in skipped:
        print(f"skipped {resource['id']} (base {', '.join(resource['base'])})", file=sys.stderr)
    print(f"kept {len(kept)}, skipped {len(skipped)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
