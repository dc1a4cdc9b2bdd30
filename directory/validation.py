"""FHIR R4 validation of incoming resources.

Structure with fhir.resources; then, driven by the StructureDefinitions as data
(`directory.profiles`), the R4 invariants and required bindings and the rules of any Plan-Net
profile the resource claims in meta.profile.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate

from django.conf import settings
from django.utils import timezone
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from .boundaries import BOUNDARY_PARAMS, boundary_issues
from .errors import InvalidRequest, InvalidResource
from .formats import instant
from .identifiers import npi_issues
from .profiles import validate as profile_issues
from .registry import RESOURCE_TYPES, RESOURCES


def _loc_to_expression(resource_type: str, loc: tuple) -> str:
    parts = [resource_type]
    for item in loc:
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]"
        elif item not in ("function-after", "function-before", "function-wrap"):
            parts.append(str(item))
    return ".".join(parts)


def _pydantic_issues(resource_type: str, error: ValidationError) -> list[dict]:
    issues = []
    for err in error.errors():
        expression = _loc_to_expression(resource_type, err["loc"])
        code = "structure" if err["type"] == "extra_forbidden" else "value"
        if err["type"] == "missing":
            code = "required"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "Unknown element"
        issues.append(
            {
                "severity": "error",
                "code": code,
                "diagnostics": f"{expression}: {message}",
                "expression": [expression],
            }
        )
    return issues


# A JSON string with its escapes; written unrolled so an unterminated one costs a single scan.
JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
NESTING_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def parse_json(body: bytes | str) -> dict:
    """Decode a request body as a JSON object, or raise a 400 naming the problem."""
    try:
        text = _as_text(body)
        _check_depth(text)
        content = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(content, dict):
        raise InvalidRequest("Request body must be a JSON object (a FHIR resource)")
    # Parsed JSON holds U+0000 only where the text has the escape (the parser refuses it raw):
    # most bodies are cleared without walking them.
    if "\\u0000" in text and _holds_nul(content):
        # FHIR strings exclude control characters; the database cannot store this one at all.
        raise InvalidRequest("Request body holds a NUL character (\\u0000), which FHIR forbids")
    return content


def _holds_nul(value: object) -> bool:
    """Whether any key or string in parsed JSON holds U+0000 (depth is already bounded)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def _as_text(body: bytes | str) -> str:
    """The body decoded as json.loads would decode it (UTF-8, -16 or -32)."""
    if isinstance(body, str):
        return body
    return body.decode(json.detect_encoding(body), "surrogatepass")


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in JSON `text`, counted outside strings, unparsed."""
    brackets = NOT_A_BRACKET.sub("", JSON_STRING.sub("", text))
    return max(accumulate(map(NESTING_STEP.__getitem__, brackets)), default=0)


def _check_depth(text: str) -> None:
    """Refuse nesting beyond FHIR_MAX_JSON_DEPTH before parsing.

    The parser and the model validation recurse once per level: a body a few thousand levels
    deep would exhaust the stack (a RecursionError, a 500). FHIR resources nest a dozen or so.
    """
    limit = settings.FHIR_MAX_JSON_DEPTH
    # No deeper than the brackets it opens (strings' included): most bodies need no scan.
    if text.count("{") + text.count("[") <= limit:
        return
    if json_depth(text) > limit:
        raise InvalidRequest(f"Request body nests arrays and objects deeper than {limit} levels")


def _as_stored(result: dict) -> dict:
    """The resource with the meta storage stamps on every write (versionId, lastUpdated), so
    rules judge it as it will be stored: a client's empty meta is not empty there, and a profile
    that requires meta.lastUpdated (every NDH profile) holds for a client that leaves it out."""
    meta = result.get("meta")
    stamp = {"versionId": "1", "lastUpdated": instant(timezone.now())}
    return {**result, "meta": {**(meta if isinstance(meta, dict) else {}), **stamp}}


def validate_resource(resource_type: str, content: dict, *, canonical: bool = True) -> dict:
    """Validate `content` as an R4 `resource_type`; return its canonical JSON form.

    With canonical=False the validated content is returned as given, saving the re-encoding.
    """
    if resource_type not in RESOURCE_TYPES:
        raise InvalidRequest(
            f"Resource type '{resource_type}' is not supported", code="not-supported"
        )
    if not isinstance(content, dict):
        raise InvalidRequest("A resource must be a JSON object")
    actual = content.get("resourceType")
    if actual != resource_type:
        raise InvalidRequest(
            f"resourceType is '{actual}' but this endpoint takes '{resource_type}'",
            expression=["resourceType"],
        )
    model_class = get_fhir_model_class(resource_type)
    try:
        model = model_class.model_validate(content)
    except ValidationError as exc:
        issues = _pydantic_issues(resource_type, exc)
        raise InvalidResource(issues[0]["diagnostics"], issues=issues) from None
    except (TypeError, ValueError, AttributeError) as exc:
        # fhir.resources' own validators can trip over a wrong JSON type (a number where a url
        # is due raises AttributeError): still the client's content, so a 422, never a 500.
        raise InvalidResource(f"{resource_type}: {exc}") from None
    result = json.loads(model.model_dump_json(exclude_none=True)) if canonical else content
    issues = profile_issues(_as_stored(result)) + npi_issues(resource_type, result)
    issues += _boundary_issues(resource_type, result)
    if issues:
        raise InvalidResource(issues[0]["diagnostics"], issues=issues)
    return result


def _boundary_issues(resource_type: str, content: dict) -> list[dict]:
    """A boundary the `contains` search would read must be GeoJSON it can index: refused, not
    stored unsearchable (the client learns now, not from a search that silently misses it)."""
    name = BOUNDARY_PARAMS.get(resource_type)
    param = RESOURCES[resource_type].params.get(name) if name else None
    if param is None:
        return []
    return boundary_issues(resource_type, (element for _, element in param.elements(content)))
