"""Element types of FHIR R4 paths, from the R4 model tables fhirpathpy ships.

Index extraction decides how to read an element (a HumanName, an Identifier, a Period, ...) from
its declared type, not from the shape of the JSON it happens to find.
"""

from __future__ import annotations

from fhirpathpy.models import models

R4 = models["r4"]
_PATH_TO_TYPE: dict[str, str] = R4["path2Type"]
_CHOICES: dict[str, list[str]] = R4["choiceTypePaths"]
_ELSEWHERE: dict[str, str] = R4["pathsDefinedElsewhere"]
# Backbone elements have no type of their own in the tables; their children do.
_BACKBONES = {path.rpartition(".")[0] for path in _PATH_TO_TYPE}


def child_path(parent_type: str, name: str) -> str:
    """The model path of a child element (`HumanName.given`), following content references."""
    child = f"{parent_type}.{name}"
    return _ELSEWHERE.get(child, child)


def child_type(path: str) -> str | None:
    """The type at a model path; a backbone element's own path; None if unknown."""
    found = _PATH_TO_TYPE.get(path)
    if found is None and path in _BACKBONES:
        return path
    return found


def choice_types(path: str) -> list[str] | None:
    """The type suffixes of a choice element (`Extension.value` -> Boolean, Code, ...)."""
    return _CHOICES.get(path)


def choice_element(path: str, element: dict) -> tuple[str, object] | None:
    """The (type, value) of choice element `path` (e.g. `Extension.value`) in a JSON object.

    The first of the model's type suffixes present wins, as fhirpathpy resolves it.
    """
    for suffix in _CHOICES.get(path) or ():
        name = path.rpartition(".")[2] + suffix
        value = element.get(name)
        if value is not None:
            typed = f"{path}{suffix}"
            return _PATH_TO_TYPE.get(typed, typed), value
    return None


def path_type(base: str, segments: list[str]) -> str | None:
    """The type at `base.seg1.seg2...`; a backbone's own path; None if unknown or a choice."""
    current = base
    for segment in segments:
        child = child_path(current, segment)
        if child in _CHOICES:
            return None
        found = child_type(child)
        if found is None:
            return None
        current = found
    return current


def is_primitive(type_name: str | None) -> bool:
    if not type_name:
        return False
    return type_name[0].islower() and "." not in type_name
