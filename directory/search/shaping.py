"""Entry content under `_summary` and `_elements`: reduced resources tagged SUBSETTED."""

from __future__ import annotations

import json
from functools import cache

from ..models import Resource
from ..stored import StoredResource
from .plan import Plan

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}


def shape_include(plan: Plan, row: Resource) -> dict | StoredResource:
    """An included resource: `_summary` applies, `_elements` does not."""
    if plan.summary in (None, "count"):
        # Whole: the stored text goes into the Bundle as is, never parsed (issue 10).
        return StoredResource(row.resource_type, row.live_content())
    return _summarized(plan, json.loads(row.live_content()))


def shape_match(plan: Plan, row: Resource) -> dict | StoredResource:
    """A matched resource: `_summary`, then `_elements` (which always keeps id and meta)."""
    if plan.elements is None:
        return shape_include(plan, row)
    content = _summarized(plan, json.loads(row.live_content()))
    return _subset(content, plan.elements | {"resourceType", "id", "meta"})


def _summarized(plan: Plan, content: dict) -> dict:
    if plan.summary in (None, "count"):
        return content
    resource_type = content.get("resourceType", "")
    if plan.summary == "data":
        keep = set(content) - {"text"}
    elif plan.summary == "text":
        keep = {"resourceType", "id", "meta", "text"} | _mandatory_elements(resource_type)
    else:
        keep = {"resourceType"} | _summary_elements(resource_type)
    return _subset(content, keep)


def _subset(content: dict, keep: set[str]) -> dict:
    """Only the kept top-level elements (with their `_x` extensions), tagged SUBSETTED."""
    reduced = {k: v for k, v in content.items() if k in keep or k.lstrip("_") in keep}
    meta = dict(reduced.get("meta") or {})
    tags = list(meta.get("tag") or [])
    if not any(
        t.get("code") == "SUBSETTED" and t.get("system") == SUBSETTED["system"] for t in tags
    ):
        tags.append(dict(SUBSETTED))
    meta["tag"] = tags
    reduced["meta"] = meta
    return reduced


@cache
def _model_fields(resource_type: str) -> dict:
    """JSON element name -> field metadata of the R4 model (fhir.resources R4B, same for these)."""
    from fhir.resources.R4B import get_fhir_model_class

    fields = get_fhir_model_class(resource_type).model_fields.items()
    return {
        (info.alias or name): info
        for name, info in fields
        if isinstance(info.json_schema_extra, dict)
        and info.json_schema_extra.get("element_property")
    }


def _summary_elements(resource_type: str) -> set[str]:
    """Elements FHIR marks isSummary for this type."""
    return {
        name
        for name, info in _model_fields(resource_type).items()
        if info.json_schema_extra.get("summary_element_property")
    }


def _mandatory_elements(resource_type: str) -> set[str]:
    """Top-level elements with minimum cardinality 1."""
    return {
        name
        for name, info in _model_fields(resource_type).items()
        if info.is_required() or info.json_schema_extra.get("element_required")
    }
