"""Data-quality pages of the admin: identifier systems marked unique, duplicates and merges."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from . import duplicates
from .errors import FHIRError
from .models import MergeRecord, UniqueIdentifierSystem

# Merging rewrites resources of any type and deletes one: only those who hold these may do it.
MERGE_PERMISSION = "directory.add_mergerecord"


@admin.register(UniqueIdentifierSystem)
class UniqueIdentifierSystemAdmin(admin.ModelAdmin):
    list_display = ("system", "resource_types", "note")
    search_fields = ("system", "note")


@admin.register(MergeRecord)
class MergeRecordAdmin(admin.ModelAdmin):
    """The merge audit (read-only), and the duplicates page with its merge action."""

    list_display = ("time", "actor", "resource_type", "kept_id", "merged_id")
    list_filter = ("resource_type",)
    search_fields = ("actor", "kept_id", "merged_id")
    readonly_fields = ("time", "actor", "resource_type", "kept_id", "merged_id", "rewritten")
    change_list_template = "admin/directory/mergerecord_change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # written by merges only

    def has_change_permission(self, request: HttpRequest, obj: MergeRecord | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: MergeRecord | None = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "duplicates/",
                self.admin_site.admin_view(self.duplicates_view),
                name="directory_duplicates",
            ),
            path(
                "duplicates/merge/",
                self.admin_site.admin_view(require_POST(self.merge_view)),
                name="directory_merge",
            ),
        ]
        return custom + super().get_urls()

    def duplicates_view(self, request: HttpRequest) -> HttpResponse:
        _require_merge_permission(request)
        rtype = request.GET.get("type", "Practitioner")
        if rtype not in duplicates.DUPLICATE_TYPES:
            rtype = "Practitioner"
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Possible duplicate {rtype}s",
            "resource_type": rtype,
            "types": duplicates.DUPLICATE_TYPES,
            "pairs": duplicates.find_pairs(rtype),
        }
        response = TemplateResponse(request, "admin/directory/duplicates.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def merge_view(self, request: HttpRequest) -> HttpResponseRedirect:
        _require_merge_permission(request)
        rtype = request.POST.get("type", "")
        keep, merged = request.POST.get("keep", ""), request.POST.get("merge", "")
        try:
            record = duplicates.merge(rtype, keep, merged, actor=request.user.get_username())
        except FHIRError as exc:
            messages.error(request, f"Not merged: {exc.diagnostics}")
        except ValueError as exc:
            messages.error(request, f"Not merged: {exc}")
        else:
            count = len(record.rewritten)
            messages.success(
                request,
                f"{rtype}/{merged} merged into {rtype}/{keep}; {count} referring resource(s) "
                "now point at the record kept.",
            )
        query = urlencode(
            {"type": rtype if rtype in duplicates.DUPLICATE_TYPES else "Practitioner"}
        )
        return redirect(f"{reverse('admin:directory_duplicates')}?{query}")


def _require_merge_permission(request: HttpRequest) -> None:
    if not request.user.has_perm(MERGE_PERMISSION):
        raise PermissionDenied
