"""Validated fhir.resources models of repeated element fragments, so identical pieces validate once.

fhir.resources validates each nested element (a CodeableConcept, an Extension, an Address...) as a
model of its own, from its JSON object alone (`model_validate` of the element's class), and takes
an instance of that class in the element's place as it is, as pydantic takes any model instance
for a field of its type. A directory repeats the same elements across thousands of resources
(three quarters of the nested validations of a generated one): here each element object is
validated once and its model is handed to the later resources whose JSON holds the same text.

Only an element that validates is remembered or substituted: one that fails stays JSON, so the
resource's own validation reports it where and as it did without this cache. The cache is keyed by
the element's class and exact JSON text (`1`, `1.0` and `true` differ) and bounded in entries and
in the text of each.
"""

from __future__ import annotations

import json
import typing
from functools import cache

from fhir_core.types import FhirBase, FhirElementOrResourceBase
from pydantic import BaseModel, ValidationError

# Element models remembered per process; past this the oldest go first.
MAX_FRAGMENTS = 20_000
# Elements longer than this as JSON (narratives, long extensions) are validated, never remembered.
MAX_FRAGMENT_CHARS = 2_000

_models: dict[tuple[type, str], BaseModel] = {}
_compact = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def substituted(model: type[BaseModel], content: dict) -> dict:
    """A shallow copy of `content` (an instance of `model` as JSON) in which every element that
    validates on its own is its validated model. `content` is left as it is."""
    fields = _element_fields(model)
    copy = dict(content)
    for name, value in content.items():
        field = fields.get(name)
        if field is None:
            continue
        klass, many = field
        # A value of the wrong shape stays as it is, for the resource's validation to refuse.
        if many and isinstance(value, list):
            copy[name] = [_element(klass, item) for item in value]
        elif not many and isinstance(value, dict):
            copy[name] = _element(klass, value)
    return copy


def _element(klass: type[BaseModel], value: object) -> object:
    """The model of one element's JSON object, or the JSON itself when it does not validate."""
    if not isinstance(value, dict):
        return value  # not an object: the resource's validation says so
    text = _compact(value)
    key = (klass, text)
    found = _models.get(key)
    if found is not None:
        return found
    inner = substituted(klass, value)
    try:
        element = klass.model_validate(inner)
    except (ValidationError, TypeError, ValueError, AttributeError):
        return value  # reported by the resource's validation, in context
    if len(text) <= MAX_FRAGMENT_CHARS:
        if len(_models) >= MAX_FRAGMENTS:
            _models.pop(next(iter(_models), key), None)
        _models[key] = element
    return element


@cache
def _element_fields(model: type[BaseModel]) -> dict[str, tuple[type[BaseModel], bool]]:
    """JSON name -> (element model class, whether a list), for the fields of `model` that hold
    FHIR elements (complex types or primitive extensions; not contained resources)."""
    fields = {}
    for name, info in model.model_fields.items():
        found = _element_type(info.annotation, many=False)
        if found is not None:
            fields[info.alias or name] = found
    return fields


def _element_type(annotation: object, *, many: bool) -> tuple[type[BaseModel], bool] | None:
    """The element model an annotation (`X | None`, `List[X] | None`) holds, if X is one."""
    if isinstance(annotation, type) and issubclass(annotation, FhirBase):
        if issubclass(annotation, FhirElementOrResourceBase):
            return None  # a resource of any type: its class depends on the value
        return annotation.get_model_klass(), many
    many = many or typing.get_origin(annotation) is list
    for arg in typing.get_args(annotation):
        found = _element_type(arg, many=many)
        if found is not None:
            return found
    return None
