"""Build a StructureDefinition's snapshot from its base's snapshot and its own differential.

Used for source StructureDefinitions published with a differential only (US Core's sources on
GitHub), so a FHIR compiler that derives profiles from them (SUSHI) has the snapshot it needs.
The rules followed are the ones FHIR states for constraining elements: a differential element
replaces the base's value of each property it sets, except `constraint` and `mapping`, which add
to the base's; an element the base does not list is unfolded from its datatype (or, for a slice,
copied from the element it slices, with the children the profile already constrained there).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

ADDITIVE = ("constraint", "mapping")


def snapshot(sd: dict, base: dict, definitions: Mapping[str, dict]) -> dict:
    """`sd` with a snapshot made from `base` (its parent, with a snapshot) and its differential.

    `definitions` maps datatype names and profile URLs to StructureDefinitions with snapshots,
    for unfolding the children of an element the base does not expand.
    """
    elements = _rebased(base["snapshot"]["element"], base["type"], sd["type"])
    for diff in sd["differential"]["element"]:
        at = _ensure(elements, diff["id"], definitions)
        elements[at] = _merged(elements[at], diff)
    return {**sd, "snapshot": {"element": elements}}


def _rebased(elements: list[dict], old: str, new: str) -> list[dict]:
    out = copy.deepcopy(elements)
    if old != new:
        for element in out:
            element["id"] = new + element["id"][len(old) :]
            element["path"] = new + element["path"][len(old) :]
    return out


def _merged(element: dict, diff: dict) -> dict:
    out = dict(element)
    for key, value in diff.items():
        if key in ("id", "path"):
            continue
        if key in ADDITIVE:
            have = {_identity(item) for item in out.get(key, [])}
            out[key] = [*out.get(key, []), *(v for v in value if _identity(v) not in have)]
        else:
            out[key] = copy.deepcopy(value)
    return out


def _identity(item: dict) -> str:
    return str(item.get("key") or item.get("identity", "")) + str(item.get("map", ""))


def _index(elements: list[dict], element_id: str) -> int | None:
    return next((i for i, e in enumerate(elements) if e["id"] == element_id), None)


def _ensure(elements: list[dict], element_id: str, definitions: Mapping[str, dict]) -> int:
    """The index of `element_id`, adding it (and the elements above it) when missing."""
    found = _index(elements, element_id)
    if found is not None:
        return found
    head, _, last = element_id.rpartition(".")
    if ":" in last:
        return _add_slice(elements, head, last, definitions)
    parent = _ensure(elements, head, definitions)
    _unfold(elements, parent, definitions)
    found = _index(elements, element_id)
    if found is None:
        raise ValueError(f"{element_id}: no such element in the base or its datatype")
    return found


def _add_slice(elements: list[dict], head: str, last: str, definitions: Mapping[str, dict]) -> int:
    name, _, slice_name = last.partition(":")
    sliced_id = f"{head}.{name}" if head else name
    sliced = _ensure(elements, sliced_id, definitions)
    # A re-slice (`a:b/c`) is inserted after its parent slice's subtree, like any slice.
    parent_id = sliced_id if "/" not in slice_name else f"{sliced_id}:{slice_name.split('/')[0]}"
    end = _subtree_end(elements, _index(elements, parent_id) or sliced)
    new_id = f"{sliced_id}:{slice_name}"
    copied = [
        {**copy.deepcopy(e), "id": new_id + e["id"][len(sliced_id) :]}
        for e in elements[sliced : _subtree_end(elements, sliced, slices=False)]
    ]
    copied[0].pop("slicing", None)
    copied[0]["sliceName"] = slice_name
    # A slice's own minimum is 0 unless the differential says otherwise: the sliced element's
    # minimum counts every value, in whatever slice.
    copied[0]["min"] = 0
    elements[end:end] = copied
    return end


def _subtree_end(elements: list[dict], at: int, slices: bool = True) -> int:
    """One past the last element under `elements[at]` (its children, and its slices if asked)."""
    root = elements[at]["id"]
    prefixes = (root + ".", root + ":") if slices else (root + ".",)
    end = at + 1
    while end < len(elements) and elements[end]["id"].startswith(prefixes):
        end += 1
    return end


def _unfold(elements: list[dict], at: int, definitions: Mapping[str, dict]) -> None:
    """Insert the children of `elements[at]` from its datatype (or type profile)."""
    element = elements[at]
    if _subtree_end(elements, at, slices=False) > at + 1:
        return  # already unfolded
    source = _type_definition(element, definitions)
    root = source["type"]
    children = [
        {
            **copy.deepcopy(e),
            "id": element["id"] + e["id"][len(root) :],
            "path": element["path"] + e["path"][len(root) :],
        }
        for e in source["snapshot"]["element"][1:]
    ]
    elements[at + 1 : at + 1] = children


def _type_definition(element: dict, definitions: Mapping[str, dict]) -> dict:
    types = element.get("type", [])
    if len(types) != 1:
        raise ValueError(f"{element['id']}: cannot unfold an element of {len(types)} types")
    profiles = types[0].get("profile", [])
    for url in profiles:
        if url.split("|")[0] in definitions:
            return definitions[url.split("|")[0]]
    if types[0]["code"] not in definitions:
        raise ValueError(f"{element['id']}: no definition of type {types[0]['code']}")
    return definitions[types[0]["code"]]
