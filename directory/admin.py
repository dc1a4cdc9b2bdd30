"""Django admin for the directory: one admin per resource type, every write through storage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from security.trust.certificates import CertificateInfo

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldsetSpec

from . import admin_search, admin_site, admin_summary, storage
from .admin_certificates import EXPIRY_WARNING_DAYS, stored_certificates
from .admin_fields import form_fields, has_definition
from .admin_forms import EndpointForm, ResourceForm, pretty
from .admin_models import (
    EndpointRecord,
    GroupRecord,
    HealthcareServiceRecord,
    InsurancePlanRecord,
    LocationRecord,
    OrganizationAffiliationRecord,
    OrganizationRecord,
    PractitionerRecord,
    PractitionerRoleRecord,
    RecordMixin,
)
from .admin_structured import layout, place_errors
from .admin_verification import VerificationAdminMixin
from .errors import Conflict, FHIRError
from .formats import instant
from .identifiers import npi_issues
from .models import Resource, ResourceVersion
from .profiles import profile_urls
from .profiles.definitions import definitions
from .registry import RESOURCES
from .search import SearchRequest
from .search import search as run_search

admin_site.brand(admin.site)

# Versions shown on one history page; a resource edited more often than this is paged.
HISTORY_PAGE_SIZE = 100
# Suggestions one reference lookup returns, and the longest search text it takes.
LOOKUP_COUNT = 10
LOOKUP_TERM_MAX = 100

NEW_RESOURCE_TEMPLATES: dict[str, dict[str, Any]] = {
    "Organization": {"resourceType": "Organization", "active": True, "name": "New organization"},
    "Practitioner": {
        "resourceType": "Practitioner",
        "active": True,
        "name": [{"family": "Family", "given": ["Given"]}],
    },
    "PractitionerRole": {
        "resourceType": "PractitionerRole",
        "active": True,
        "practitioner": {"reference": "Practitioner/<id>"},
        "organization": {"reference": "Organization/<id>"},
    },
    "Location": {"resourceType": "Location", "status": "active", "name": "New location"},
    "Endpoint": {
        "resourceType": "Endpoint",
        "status": "active",
        "name": "New endpoint",
        "connectionType": {
            "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
            "code": "hl7-fhir-rest",
        },
        "payloadType": [{"text": "any"}],
        "address": "https://example.org/fhir",
    },
    "HealthcareService": {
        "resourceType": "HealthcareService",
        "active": True,
        "name": "New service",
        "providedBy": {"reference": "Organization/<id>"},
    },
    "OrganizationAffiliation": {
        "resourceType": "OrganizationAffiliation",
        "active": True,
        "organization": {"reference": "Organization/<id>"},
        "participatingOrganization": {"reference": "Organization/<id>"},
    },
    "InsurancePlan": {"resourceType": "InsurancePlan", "status": "active", "name": "New plan"},
    "Group": {"resourceType": "Group", "type": "practitioner", "actual": True, "name": "New group"},
}


def certificate_badge(info: CertificateInfo) -> SafeString:
    """A short expiry verdict; an alert icon when expired or within the warning window."""
    days = info.days_left()
    if info.is_expired():
        text = f"Expired {info.not_after:%Y-%m-%d}"
    elif info.expires_within(EXPIRY_WARNING_DAYS):
        text = f"Expires in {days} days ({info.not_after:%Y-%m-%d})"
    else:
        return format_html(
            '<span class="cert-ok">Valid until {}</span>', f"{info.not_after:%Y-%m-%d}"
        )
    return format_html(
        '<strong class="cert-expiring"><img src="{}" alt="Warning"> {}</strong>',
        static("admin/img/icon-alert.svg"),
        text,
    )


class ResourceAdmin(VerificationAdminMixin, admin.ModelAdmin):
    """List, search, filter, view, create, edit, delete and history of one resource type."""

    form = ResourceForm
    list_display: tuple[str, ...] = (
        "name_column",
        "npi_column",
        "city_state_column",
        "type_column",
        "status_column",
        "logical_id",
        "version_id",
        "last_updated",
    )
    list_display_links = ("name_column",)
    ordering = ("sort_name", "id")
    search_fields = ("logical_id",)  # the search itself is get_search_results, on the index tables
    search_help_text = "Start of a name or city, an identifier value such as an NPI, or an id."
    readonly_fields: ClassVar[tuple[str, ...]] = ("summary", "resource_json")
    summary_fields: tuple[str, ...] = ("summary",)
    edit_fields = ("content_json", "version")
    extra_fieldsets: tuple[Any, ...] = ()  # shown beside both editors (the Endpoint certificate)
    list_per_page = 50
    change_form_template = "admin/directory/resource_change_form.html"
    # Counting every row of a large directory on each page view is slow; the filtered count stays.
    show_full_result_count = False
    save_as = False

    def __init__(self, model: type[Resource], admin_site: AdminSite) -> None:
        super().__init__(model, admin_site)
        # Per resource type, so per instance (Django reads it from the instance).
        self.list_filter = tuple(admin_search.list_filters(_resource_type_of(model)))  # type: ignore[misc]

    @property
    def resource_type(self) -> str:
        return _resource_type_of(self.model)

    # ------------------------------------------------------------ list

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Resource], search_term: str
    ) -> tuple[QuerySet[Resource], bool]:
        return admin_search.search(queryset, self.resource_type, search_term), False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # The bulk delete action bypasses storage; deletion is one resource at a time.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="name", ordering="sort_name")
    def name_column(self, obj: Resource) -> str:
        return admin_summary.display_name(self.resource_type, _data(obj))

    @admin.display(description="NPI")
    def npi_column(self, obj: Resource) -> str:
        return admin_summary.npi(_data(obj))

    @admin.display(description="city, state")
    def city_state_column(self, obj: Resource) -> str:
        return admin_summary.city_state(_data(obj))

    @admin.display(description="type")
    def type_column(self, obj: Resource) -> str:
        return admin_summary.type_codes(_data(obj))

    @admin.display(description="status")
    def status_column(self, obj: Resource) -> str:
        return admin_summary.status(_data(obj))

    # ------------------------------------------------------------ change form

    def get_fieldsets(self, request: HttpRequest, obj: Resource | None = None) -> _FieldsetSpec:
        if obj is None:
            return [("Resource JSON", {"fields": self.edit_fields}), *self.extra_fieldsets]
        if not self.has_change_permission(request, obj):
            return [
                ("Summary", {"fields": self.summary_fields}),
                ("Resource JSON", {"fields": ("resource_json",)}),
            ]
        return [
            ("Summary", {"fields": self.summary_fields}),
            ("Resource JSON", {"fields": self.edit_fields}),
            *self.extra_fieldsets,
        ]

    def get_form(
        self,
        request: HttpRequest,
        obj: Resource | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[forms.ModelForm[Any]]:
        form = super().get_form(request, obj, change, **kwargs)
        profile = self._requested_profile(request) if obj is None else None
        return type(form.__name__, (form,), {"profile": profile}) if profile else form

    def _requested_profile(self, request: HttpRequest) -> str | None:
        """A profile of this type the server knows, asked for by `?profile=` on the add page."""
        wanted = request.GET.get("profile", "")
        return wanted if wanted in self._profiles() else None

    def _profiles(self) -> list[str]:
        return [u for u in profile_urls() if definitions()[u].type == self.resource_type]

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"content_json": pretty(NEW_RESOURCE_TEMPLATES[self.resource_type])}

    @admin.display(description="Resource JSON")
    def resource_json(self, obj: Resource | None) -> str:
        return format_html("<pre>{}</pre>", pretty(_data(obj))) if obj else "—"

    @admin.display(description="Summary")
    def summary(self, obj: Resource | None) -> str:
        if obj is None or not obj.pk:
            return "—"
        data = _data(obj)
        facts = [
            ("Name", admin_summary.display_name(self.resource_type, data)),
            ("Id", obj.logical_id),
            ("Version", f"{obj.version_id}, last updated {instant(obj.last_updated)}"),
            ("Identifiers", ", ".join(admin_summary.identifiers(data))),
            ("City, state", admin_summary.city_state(data)),
            ("Status", admin_summary.status(data)),
            ("Type", admin_summary.type_codes(data)),
            ("References", ", ".join(admin_summary.references(data))),
        ]
        rows = format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", ((k, v) for k, v in facts if v)
        )
        history = reverse(self._url_name("history"), args=[obj.pk])
        return format_html(
            '<table class="resource-summary">{}</table><p><a href="{}">Version history</a> · '
            '<a href="/fhir/{}/{}">FHIR API URL</a></p>',
            rows,
            history,
            self.resource_type,
            obj.logical_id,
        )

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Resource | None = None,
    ) -> HttpResponse:
        form = context["adminform"].form
        may_edit = (
            self.has_add_permission(request) if add else self.has_change_permission(request, obj)
        )
        derived = has_definition(self.resource_type)
        if hasattr(form, "structured_values") and may_edit and derived:
            context.update(self._structured_context(form))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _structured_context(self, form: ResourceForm) -> dict[str, Any]:
        fields = form_fields(self.resource_type, form.base)
        views = layout(fields, form.base, form.structured_values(), self._lookup_url)
        unplaced = place_errors(views, form.issues, self.resource_type)
        return {
            "profiles": [] if form.instance.pk else self._profile_links(form.profile),
            "structured": views,
            "structured_unplaced": unplaced,
            "editor": form.editor,
            "check_identifier_url": reverse(self._url_name("check_identifier")),
        }

    def _profile_links(self, current: str | None) -> list[tuple[str, str, bool]]:
        """(query, label, chosen) for each definition a new record can be created under."""
        links = [("", f"R4 {self.resource_type}", current is None)]
        for url in self._profiles():
            links.append((urlencode({"profile": url}), url.rsplit("/", 1)[-1], url == current))
        return links

    def _lookup_url(self, resource_type: str) -> str | None:
        """The reference lookup of the admin that manages `resource_type`, if any."""
        for model, model_admin in self.admin_site._registry.items():
            if getattr(model, "RESOURCE_TYPE", None) == resource_type:
                if not isinstance(model_admin, ResourceAdmin):
                    return None  # an admin without the lookup view
                try:
                    return reverse(model_admin._url_name("lookup"))
                except NoReverseMatch:
                    return None
        return None

    # ------------------------------------------------------------ JSON endpoints of the form

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        own = [
            path(
                "lookup/",
                self.admin_site.admin_view(self.lookup_view),
                name="{}_{}_lookup".format(*info),
            ),
            path(
                "check-identifier/",
                self.admin_site.admin_view(self.check_identifier_view),
                name="{}_{}_check_identifier".format(*info),
            ),
        ]
        return own + super().get_urls()

    def lookup_view(self, request: HttpRequest) -> JsonResponse:
        """Records of this type whose name starts with `q` (or whose id or identifier is `q`),
        for reference autocomplete; read-only, so a GET (no CSRF token needed)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        term = request.GET.get("q", "").strip()[:LOOKUP_TERM_MAX]
        results = {}
        for pairs in self._lookup_queries(term):
            try:
                found = run_search(SearchRequest(self.resource_type, pairs)).entries
            except FHIRError:
                continue  # e.g. text that cannot be an id
            for entry in found:
                if entry.mode == "match":
                    reference = f"{self.resource_type}/{entry.row.logical_id}"
                    results[reference] = self._display(entry.row)
        rows = [{"reference": r, "display": d} for r, d in results.items()][:LOOKUP_COUNT]
        return JsonResponse({"results": rows})

    def _lookup_queries(self, term: str) -> list[list[tuple[str, str]]]:
        if not term:
            return []
        count = ("_count", str(LOOKUP_COUNT))
        definition = RESOURCES.get(self.resource_type)
        params = definition.params if definition else {}
        queries = [[("name", term), count]] if "name" in params else []
        if "identifier" in params:
            queries.append([("identifier", term), count])
        queries.append([("_id", term), count])
        return queries

    def _display(self, row: Resource) -> str:
        data = storage.json.loads(row.content) if row.content else {}
        return admin_summary.display_name(self.resource_type, data) or row.logical_id

    def check_identifier_view(self, request: HttpRequest) -> JsonResponse:
        """The write rule for one identifier as the administrator types it (the NPI check digit):
        the same function storage applies, so the page and the save agree."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        identifier = {
            "system": request.GET.get("system", "")[:200],
            "value": request.GET.get("value", "")[:200],
        }
        issues = npi_issues(self.resource_type, {"identifier": [identifier]})
        message = issues[0]["diagnostics"].partition(": ")[2] if issues else ""
        return JsonResponse({"valid": not issues, "message": message})

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        for attempt in range(2):
            try:
                return super().changeform_view(request, object_id, form_url, extra_context)
            except WriteRaced as raced:
                # Rolled back. The second pass checks against the write that came between, and
                # the form shows its refusal; a second race in a row is only reported.
                if attempt:
                    self.message_user(request, f"Not saved: {raced.diagnostics}", messages.ERROR)
        return redirect(request.get_full_path())

    def save_model(
        self, request: HttpRequest, obj: Resource, form: ResourceForm, change: bool
    ) -> None:
        """The write the form's clean() checked, through storage as the API writes."""
        # clean() accepted the form, so it holds the content it checked.
        content = cast(dict[str, Any], form.content)
        try:
            if change:
                written = storage.update(
                    self.resource_type, obj.logical_id, content, if_match=form.if_match
                )
            else:
                written = storage.create(self.resource_type, content)
        except FHIRError as exc:
            # clean() accepted it: another write committed between the check and this one.
            raise WriteRaced(exc.diagnostics) from exc
        obj.pk = written.row.pk
        obj.refresh_from_db()
        obj.__dict__.pop("_data", None)  # RecordMixin.data caches the parsed JSON

    def construct_change_message(  # type: ignore[override]  # Django stores a text message as is
        self, request: HttpRequest, form: ResourceForm, formsets: Any, add: bool = False
    ) -> str:
        version = form.instance.version_id
        return f"{'Created' if add else 'Saved'} as version {version} through the admin."

    # ------------------------------------------------------------ delete

    def get_deleted_objects(
        self, objs: Sequence[Resource] | QuerySet[Resource], request: HttpRequest
    ) -> tuple[list[str], dict[str, int], set[str], list[str]]:
        # Versions and index rows are storage's business: the page lists the resource only.
        return [str(obj) for obj in objs], {str(self.opts.verbose_name): len(objs)}, set(), []

    def delete_model(self, request: HttpRequest, obj: Resource) -> None:
        storage.delete(self.resource_type, obj.logical_id)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except Conflict as exc:
            self.message_user(request, f"Not deleted: {exc.diagnostics}", messages.ERROR)
            return redirect(self._url_name("change"), object_id)

    # ------------------------------------------------------------ history

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Permission before existence, as Django's own views do: no probing for ids.
        obj = self.get_object(request, object_id)
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        if obj is None:
            # Django's own not-found redirect; django-stubs does not declare this private helper.
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)  # type: ignore[attr-defined]
        before = request.GET.get("before")
        versions, more = storage.history_page(
            resource_type=self.resource_type,
            logical_id=obj.logical_id,
            before=int(before) if before and before.isdigit() else None,
            count=HISTORY_PAGE_SIZE,
        )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Version history: {obj}",
            "subtitle": None,
            "object": obj,
            "opts": self.opts,
            "versions": [_version_row(v) for v in versions],
            "older": versions[-1].id if more else None,
            "change_url": reverse(self._url_name("change"), args=[obj.pk]),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/directory/resource_history.html", context)

    def _url_name(self, view: str) -> str:
        return f"admin:{self.opts.app_label}_{self.opts.model_name}_{view}"


def _data(obj: Resource) -> dict[str, Any]:
    """The parsed JSON of an admin's record (a per-type proxy, admin_models.RecordMixin)."""
    return cast(RecordMixin, obj).data


def _resource_type_of(model: type[Model]) -> str:
    """The resource type of an admin's model: always a per-type proxy (admin_models)."""
    return cast("type[RecordMixin]", model).RESOURCE_TYPE


class WriteRaced(Exception):
    """A write refused although the form's checks passed: a concurrent write came between."""

    def __init__(self, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.diagnostics = diagnostics


def _version_row(version: ResourceVersion) -> dict[str, Any]:
    return {
        "version_id": version.version_id,
        "last_updated": instant(version.last_updated),
        "method": dict(version.METHODS).get(version.method, version.method),
        "json": pretty(storage.json.loads(version.content)) if version.content else "",
    }


@admin.register(OrganizationRecord)
class OrganizationAdmin(ResourceAdmin):
    pass


@admin.register(PractitionerRecord)
class PractitionerAdmin(ResourceAdmin):
    list_display = tuple(c for c in ResourceAdmin.list_display if c != "city_state_column")


@admin.register(PractitionerRoleRecord)
class PractitionerRoleAdmin(ResourceAdmin):
    list_display = tuple(c for c in ResourceAdmin.list_display if c != "city_state_column")


@admin.register(LocationRecord)
class LocationAdmin(ResourceAdmin):
    pass


@admin.register(HealthcareServiceRecord)
class HealthcareServiceAdmin(ResourceAdmin):
    list_display = tuple(c for c in ResourceAdmin.list_display if c != "city_state_column")


@admin.register(OrganizationAffiliationRecord)
class OrganizationAffiliationAdmin(ResourceAdmin):
    list_display = tuple(c for c in ResourceAdmin.list_display if c != "city_state_column")


@admin.register(InsurancePlanRecord)
class InsurancePlanAdmin(ResourceAdmin):
    list_display = tuple(c for c in ResourceAdmin.list_display if c != "city_state_column")


@admin.register(GroupRecord)
class GroupAdmin(ResourceAdmin):
    list_display = tuple(c for c in ResourceAdmin.list_display if c != "city_state_column")


@admin.register(EndpointRecord)
class EndpointAdmin(ResourceAdmin):
    form = EndpointForm
    list_display = (
        "name_column",
        "type_column",
        "status_column",
        "certificate_column",
        "logical_id",
        "version_id",
        "last_updated",
    )
    readonly_fields = ("summary", "certificates", "resource_json")
    summary_fields = ("summary", "certificates")
    extra_fieldsets = (
        ("Certificate", {"fields": ("certificate_file", "certificate_pem", "certificate_use")}),
    )

    @admin.display(description="certificate")
    def certificate_column(self, obj: Resource) -> str:
        found = [info for _, info in stored_certificates(_data(obj)) if info]
        return certificate_badge(min(found, key=lambda i: i.not_after)) if found else "—"

    @admin.display(description="Certificates")
    def certificates(self, obj: Resource | None) -> str:
        if obj is None or not obj.pk:
            return "—"
        found = stored_certificates(_data(obj))
        if not found:
            return "No certificate stored. Upload or paste one below."
        return format_html_join("", "{}", ((_certificate_table(u, i),) for u, i in found))

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        obj = self.get_object(request, object_id) if request.method == "GET" else None
        if obj is not None:
            self._warn_about_expiry(request, obj)
        return response

    def response_change(self, request: HttpRequest, obj: Resource) -> HttpResponse:
        if not _continues_editing(request):
            self._warn_about_expiry(request, obj)
        return super().response_change(request, obj)

    def response_add(
        self, request: HttpRequest, obj: Resource, post_url_continue: str | None = None
    ) -> HttpResponse:
        if not _continues_editing(request):
            self._warn_about_expiry(request, obj)
        return super().response_add(request, obj, post_url_continue)

    def _warn_about_expiry(self, request: HttpRequest, obj: Resource) -> None:
        for use, info in stored_certificates(_data(obj)):
            if info and info.expires_within(EXPIRY_WARNING_DAYS):
                verdict = (
                    "has expired" if info.is_expired() else f"expires in {info.days_left()} days"
                )
                self.message_user(
                    request,
                    f"The {use} certificate of this endpoint {verdict} "
                    f"({info.not_after:%Y-%m-%d}). Upload its replacement.",
                    messages.WARNING,
                )


def _continues_editing(request: HttpRequest) -> bool:
    """Whether the save redirects to the change page ("Save and continue editing"), whose GET
    warns by itself: warning here as well would show the same expiry warning twice."""
    return "_continue" in request.POST


def _certificate_table(use: str, info: CertificateInfo | None) -> SafeString:
    if info is None:
        return format_html("<p>A stored {} certificate could not be read.</p>", use)
    facts = [
        ("Use", use),
        ("Subject", info.subject),
        ("Issuer", info.issuer),
        ("Subject alternative names", ", ".join(info.sans) or "none"),
        ("Not before", f"{info.not_before:%Y-%m-%d %H:%M} UTC"),
        ("Not after", f"{info.not_after:%Y-%m-%d %H:%M} UTC"),
        ("SHA-256 fingerprint", info.fingerprint_display),
    ]
    rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", facts)
    return format_html(
        '<table class="certificate"><caption>{}</caption>{}</table>', certificate_badge(info), rows
    )


# The data-quality admins (unique identifier systems, duplicates, merges) and the custom search
# parameters' admin register themselves.
from . import admin_quality, admin_searchparams  # noqa: E402,F401
