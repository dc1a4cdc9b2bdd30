"""Token parameters: (system, code) pairs on TokenIndex, `:not`, `:text` and `:of-type`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Q

from ...errors import InvalidRequest
from ...models import TokenIndex
from ...normalize import clip
from ...searchparams import SearchParam
from ..plan import Plan
from ..values import any_of, or_values, split, unescape
from .base import IndexKind, IndexTable, Row, extension_value, semi_join
from .string import STRINGS, text_condition, text_rows

# Where each complex type keeps a token's (system, code). ContactPoint: its system (phone,
# email, ...) and its value, as HAPI indexes it.
_TOKEN_KEYS = {
    "Coding": ("system", "code"),
    "Identifier": ("system", "value"),
    "ContactPoint": ("system", "value"),
}
# `:text` and `:of-type` rows are filed under the parameter's name with this suffix.
TEXT_SUFFIX = ":text"
OF_TYPE_SUFFIX = ":of-type"
TOKENS = IndexTable(TokenIndex, ("system", "code"))


def tokens_of(type_name: str | None, element: Any) -> list[tuple[str, str]]:
    """The (system, code) pairs a token parameter finds in an element of this type."""
    if isinstance(element, bool):
        return [("", "true" if element else "false")]
    if isinstance(element, str):
        return [("", element)]
    value = extension_value(type_name, element)
    if value is not None:
        return tokens_of(*value)
    if not isinstance(element, dict):
        return []
    if type_name == "CodeableConcept":
        return [t for coding in element.get("coding") or [] for t in tokens_of("Coding", coding)]
    keys = _TOKEN_KEYS.get(type_name or "")
    if keys is None:
        return []
    code = element.get(keys[1])
    return [(element.get(keys[0]) or "", code)] if isinstance(code, str) and code else []


def texts_of(type_name: str | None, element: Any) -> list[str]:
    """What `:text` searches: a concept's text and its codings' displays; an identifier type's."""
    value = extension_value(type_name, element)
    if value is not None:
        return texts_of(*value)
    if not isinstance(element, dict):
        return []
    if type_name == "CodeableConcept":
        texts = [element.get("text")]
        texts += [c.get("display") for c in element.get("coding") or [] if isinstance(c, dict)]
        return [t for t in texts if isinstance(t, str)]
    if type_name == "Coding":
        return [element["display"]] if isinstance(element.get("display"), str) else []
    if type_name == "Identifier":
        return texts_of("CodeableConcept", element.get("type"))
    return []


def of_type_of(type_name: str | None, element: Any) -> list[tuple[str, str]]:
    """An identifier's (`type system|type code`, value) pairs, for `:of-type`."""
    if type_name != "Identifier" or not isinstance(element, dict):
        return []
    value = element.get("value")
    if not isinstance(value, str) or not value:
        return []
    kinds = tokens_of("CodeableConcept", element.get("type"))
    return [(f"{system}|{code}", value) for system, code in kinds]


class TokenKind(IndexKind):
    tables = (TOKENS, STRINGS)  # `:text` rows are folded strings
    modifiers = frozenset({"not", "missing", "text"})

    def modifiers_for(self, param: SearchParam) -> frozenset[str]:
        # `:of-type` reads Identifier.type: only identifier parameters have one.
        return self.modifiers | ({"of-type"} if param.kind == "Identifier" else set())

    def rows(self, param: SearchParam, type_name: str | None, element: Any) -> Iterator[Row]:
        for system, code in tokens_of(type_name, element):
            yield TOKENS, param.name, (clip(system), clip(code))
        yield from text_rows(param.name + TEXT_SUFFIX, texts_of(type_name, element))
        for kind, value in of_type_of(type_name, element):
            yield TOKENS, param.name + OF_TYPE_SUFFIX, (clip(kind), clip(value))

    def condition(
        self, plan: Plan, param: SearchParam, raw_name: str, modifier: str, value: str
    ) -> Q:
        if modifier == "text":
            rows = self.index_rows(plan, param.name + TEXT_SUFFIX, STRINGS)
            return text_condition(rows, "", value)
        if modifier == "of-type":
            matches = any_of(_of_type_match(raw_name, v) for v in or_values(value))
            return semi_join(self.index_rows(plan, param.name + OF_TYPE_SUFFIX).filter(matches))
        matches = any_of(token_match(param, raw_name, v) for v in or_values(value))
        return semi_join(self.index_rows(plan, param.name).filter(matches), modifier == "not")


def token_match(param: SearchParam, raw_name: str, text: str) -> Q:
    """`code`, `system|code`, `|code` (no system) or `system|` (any code of the system)."""
    parts = split(text, "|")
    if len(parts) > 2:
        raise InvalidRequest(f"'{raw_name}' value '{text}' has more than one '|'")
    if param.kind == "boolean" and (len(parts) != 1 or parts[0] not in ("true", "false")):
        raise InvalidRequest(f"'{raw_name}' must be true or false, not '{text}'")
    if len(parts) == 1:
        return Q(code=unescape(parts[0]))
    system, code = (unescape(p) for p in parts)
    if not code:
        return Q(system=system)
    return Q(system=system, code=code)


def _of_type_match(raw_name: str, text: str) -> Q:
    parts = [unescape(p) for p in split(text, "|")]
    if len(parts) != 3 or not all(parts[1:]):
        raise InvalidRequest(
            f"'{raw_name}' value '{text}' must be type-system|type-code|identifier-value",
            expression=[raw_name],
        )
    system, code, value = parts
    return Q(system=clip(f"{system}|{code}"), code=value)
