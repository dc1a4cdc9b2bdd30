"""The web admin of custom SearchParameters: the generic resource admin, through storage.

Adding or editing one here is the same write as `POST/PUT [base]/SearchParameter`: storage runs
the same checks (`customparams.check_definition`) and the form shows their issues. The list
shows whether each active parameter is searchable yet or waits for a reindex.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from . import customparams
from .admin import ResourceAdmin
from .admin_forms import pretty
from .admin_models import SearchParameterRecord

# What a new custom parameter looks like: an Organization parameter over a plain path.
TEMPLATE = {
    "resourceType": "SearchParameter",
    "url": "https://directory.example.org/fhir/SearchParameter/organization-alias",
    "name": "OrganizationAlias",
    "status": "draft",
    "description": "Organizations by an alias",
    "code": "alias",
    "base": ["Organization"],
    "type": "string",
    "expression": "Organization.alias",
}


@admin.register(SearchParameterRecord)
class SearchParameterAdmin(ResourceAdmin):
    list_display = (
        "code_column",
        "base_column",
        "param_type_column",
        "status_column",
        "indexed_column",
        "logical_id",
        "version_id",
        "last_updated",
    )
    list_display_links = ("code_column",)
    search_help_text = "An id."

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"content_json": pretty(TEMPLATE)}

    @admin.display(description="code")
    def code_column(self, obj: SearchParameterRecord) -> str:
        return obj.data.get("code", "")

    @admin.display(description="base")
    def base_column(self, obj: SearchParameterRecord) -> str:
        return ", ".join(obj.data.get("base") or [])

    @admin.display(description="type")
    def param_type_column(self, obj: SearchParameterRecord) -> str:
        return obj.data.get("type", "")

    @admin.display(description="searchable")
    def indexed_column(self, obj: SearchParameterRecord) -> str:
        """`yes` once reindexed, `reindex needed` before; blank when not active."""
        customparams.ensure_fresh()
        if obj.data.get("status") != "active":
            return ""
        bases = obj.data.get("base") or []
        code = obj.data.get("code", "")
        pending = any(customparams.is_pending(base, code) for base in bases)
        return "reindex needed" if pending else "yes"
