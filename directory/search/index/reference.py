"""Reference parameters: resolved (type, id) targets on ReferenceIndex, `:Type` modifiers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Q

from ...errors import InvalidRequest
from ...models import ReferenceIndex
from ...references import Reference as ParsedReference
from ...references import parse_restful as parse_reference
from ...registry import ID_PATTERN, RESOURCE_TYPES
from ...searchparams import SearchParam
from ..plan import Plan
from ..values import any_of, nothing, or_values, unescape
from .base import IndexKind, IndexTable, Row, extension_value, semi_join

# `parse_reference`: `Type/id`, `Type/id/_history/n` or an absolute URL ending in those, by the
# R4 grammar (directory/references.py); None otherwise.
__all__ = ["ParsedReference", "ReferenceKind", "parse_reference", "references_of"]

REFERENCES = IndexTable(ReferenceIndex, ("target_type", "target_id", "external"))


def references_of(type_name: str | None, element: Any) -> list[ParsedReference]:
    """The reference a Reference element (or an Extension's valueReference) holds, if stored."""
    value = extension_value(type_name, element)
    if value is not None:
        return references_of(*value)
    if not isinstance(element, dict):
        return []
    parsed = parse_reference(element.get("reference"))
    return [parsed] if parsed and parsed.type in RESOURCE_TYPES else []


class ReferenceKind(IndexKind):
    tables = (REFERENCES,)

    def modifiers_for(self, param: SearchParam) -> frozenset[str]:
        return self.modifiers | set(param.targets)

    def rows(self, param: SearchParam, type_name: str | None, element: Any) -> Iterator[Row]:
        for ref in references_of(type_name, element):
            yield REFERENCES, param.name, (*ref.key, ref.external)

    def condition(
        self, plan: Plan, param: SearchParam, raw_name: str, modifier: str, value: str
    ) -> Q:
        values = [unescape(v) for v in or_values(value)]
        matches = any_of(reference_match(param, raw_name, modifier, v) for v in values)
        return semi_join(self.index_rows(plan, param.name).filter(matches))


def reference_match(param: SearchParam, raw_name: str, type_modifier: str, text: str) -> Q:
    """A `Type/id` names its type; a bare id takes the `:Type` modifier or the only target."""
    parsed = parse_reference(text)
    if parsed is not None:
        if type_modifier and parsed.type != type_modifier:
            return nothing()
        return Q(target_type=parsed.type, target_id=parsed.id)
    target_id = _checked_id(raw_name, text)
    if type_modifier:
        return Q(target_type=type_modifier, target_id=target_id)
    if len(param.targets) == 1:
        return Q(target_type=param.targets[0], target_id=target_id)
    return Q(target_id=target_id)


def _checked_id(raw_name: str, text: str) -> str:
    if not ID_PATTERN.match(text):
        raise InvalidRequest(
            f"'{raw_name}' value '{text}' is not a reference (Type/id, id or an absolute URL)"
        )
    return text
