"""Admin search box and list filters answered from the search index tables, never the JSON.

Each condition is a semi-join into StringIndex/TokenIndex/ReferenceIndex, the same index rows the
FHIR API searches, so the admin stays an index lookup at millions of resources.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest

from .models import ReferenceIndex, StringIndex, TokenIndex
from .normalize import fold
from .profiles import required_codes
from .registry import RESOURCES

# Most distinct values a filter lists; more would not fit a sidebar anyway.
FILTER_CHOICES_MAX = 60


def _string_prefix(resource_type: str, param: str, text: str) -> Q:
    rows = StringIndex.objects.filter(
        resource_id=OuterRef("pk"), resource_type=resource_type, param=param
    )
    return Q(Exists(rows.filter(value__startswith=fold(text))))


def _token(resource_type: str, param: str, code: str) -> Q:
    rows = TokenIndex.objects.filter(
        resource_id=OuterRef("pk"), resource_type=resource_type, param=param, code=code
    )
    return Q(Exists(rows))


def _refers_to_named(resource_type: str, param: str, target_type: str, text: str) -> Q:
    """Resources whose `param` reference points at a `target_type` whose name starts with text."""
    targets = StringIndex.objects.filter(
        resource_type=target_type, param="name", value__startswith=fold(text)
    ).values("resource__logical_id")
    rows = ReferenceIndex.objects.filter(
        resource_id=OuterRef("pk"),
        resource_type=resource_type,
        param=param,
        target_type=target_type,
        target_id__in=targets,
    )
    return Q(Exists(rows))


def term_condition(resource_type: str, term: str) -> Q:
    """What one search text matches: id, identifier value, start of a name or city."""
    params = RESOURCES[resource_type].params
    condition = Q(logical_id=term) | _token(resource_type, "identifier", term)
    for name in ("name", "address-city"):
        if name in params:
            condition |= _string_prefix(resource_type, name, term)
    if resource_type == "PractitionerRole":
        # A role has no name of its own: it is found by its practitioner's or organization's.
        for name in ("practitioner", "organization"):
            condition |= _refers_to_named(resource_type, name, params[name].targets[0], term)
    return condition


def search(queryset: QuerySet, resource_type: str, text: str) -> QuerySet:
    """The whole text as one phrase, or every word of it matching on its own."""
    text = " ".join(text.split())
    if not text:
        return queryset
    condition = term_condition(resource_type, text)
    words = text.split(" ")
    if len(words) > 1:
        every_word = Q()
        for word in words:
            every_word &= term_condition(resource_type, word)
        condition |= every_word
    return queryset.filter(condition)


class IndexFilter(admin.SimpleListFilter):
    """A sidebar filter on one search parameter, read from its index table."""

    resource_type = ""
    index_param = ""

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(self.condition(value))

    def condition(self, value: str) -> Q:
        return _token(self.resource_type, self.index_param, value)


class TokenValuesFilter(IndexFilter):
    """Choices are the codes actually present (e.g. organization types)."""

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        codes = (
            TokenIndex.objects.filter(resource_type=self.resource_type, param=self.index_param)
            .order_by("code")
            .values_list("code", flat=True)
            .distinct()[:FILTER_CHOICES_MAX]
        )
        return [(code, code) for code in codes]


class FixedCodesFilter(IndexFilter):
    """Choices are the codes the binding allows (status, active)."""

    codes: tuple[str, ...] = ()

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        return [(code, code) for code in self.codes]


class StateFilter(IndexFilter):
    """Exact state of any address, from the string index (its unfolded `exact` column)."""

    index_param = "address-state"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        states = (
            StringIndex.objects.filter(resource_type=self.resource_type, param=self.index_param)
            .order_by("exact")
            .values_list("exact", flat=True)
            .distinct()[:FILTER_CHOICES_MAX]
        )
        return [(state, state) for state in states]

    def condition(self, value: str) -> Q:
        rows = StringIndex.objects.filter(
            resource_id=OuterRef("pk"),
            resource_type=self.resource_type,
            param=self.index_param,
            exact=value,
        )
        return Q(Exists(rows))


def list_filters(resource_type: str) -> list[type[IndexFilter]]:
    """The sidebar filters a type supports, derived from its search parameters."""
    params = RESOURCES[resource_type].params
    filters = []
    for name, title, base in (
        ("type", "type", TokenValuesFilter),
        ("specialty", "specialty", TokenValuesFilter),
        ("connection-type", "connection type", TokenValuesFilter),
        ("status", "status", FixedCodesFilter),
        ("active", "active", FixedCodesFilter),
        ("address-state", "state", StateFilter),
    ):
        if name in params:
            filters.append(_filter_class(resource_type, name, title, base))
    return filters


def _filter_class(
    resource_type: str, name: str, title: str, base: type[IndexFilter]
) -> type[IndexFilter]:
    attrs: dict[str, Any] = {
        "title": title,
        "parameter_name": name.replace("-", "_"),
        "resource_type": resource_type,
        "index_param": name,
    }
    if base is FixedCodesFilter:
        allowed = required_codes(f"{resource_type}.{name}") or {"true", "false"}
        attrs["codes"] = tuple(sorted(allowed))
    return type(f"{resource_type}{base.__name__}_{attrs['parameter_name']}", (base,), attrs)
