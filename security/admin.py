"""Django admin for API clients: search by credential, the client page, and key actions.

Changes go through security.clients and security.keys so each one leaves a KeyEvent naming the
signed-in user. Keys themselves are never shown here, only their public prefixes.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypedDict

from django.contrib import admin
from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.db.models import Q, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path

# admin_records and admin_staff register pages (admin_staff: the user and group pages).
from . import admin_records, admin_staff, admin_views, clients, keys  # noqa: F401
from .admin_views import AdminView
from .models import ApiClient, ApiKey, KeyEvent, RequestAudit
from .trust.certificates import CertificateInfo, canonical_fingerprint

AUDIT_ROWS = 50
# The client fields the admin's form edits, each an argument of the clients service.
EDITED = ("name", "organization", "community", "allowed_scopes", "status", "contact")
ADMIN_REASON = "changed in the web admin"


class PkRow(TypedDict):
    """A row of `.values("pk")`."""

    pk: int


@dataclass(frozen=True)
class KeyRow:
    """A key as the client page lists it, with what the user may do to it."""

    key: ApiKey
    state: str
    can_rotate: bool
    can_retire: bool


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "community", "status", "created"]
    list_filter = ["status", "community"]
    search_fields = ["name", "organization"]
    search_help_text = "Name, organisation, certificate DNS name/subject/fingerprint, key prefix"
    fields = ["name", "organization", "community", "allowed_scopes", "status", "contact"]
    # Set by UDAP registration or security.clients.set_oauth_credentials, both audited.
    readonly_fields = ["oauth_client_id", "udap_uri", "jwks"]
    fields += readonly_fields
    change_form_template = "admin/security/client_change_form.html"

    def has_delete_permission(self, request: HttpRequest, obj: ApiClient | None = None) -> bool:
        # Deleting would drop the keys without a trail; suspending a client is the way to stop it.
        return False

    # --- Search ---------------------------------------------------------------------------------

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[ApiClient], search_term: str
    ) -> tuple[QuerySet[ApiClient], bool]:
        """Also find clients by a certificate identity's value or by a key prefix."""
        matched, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            by_credential = credential_matches(term)
            matched = matched | queryset.filter(pk__in=by_credential)
        return matched, may_have_duplicates

    # --- Saving through the services -----------------------------------------------------------

    def save_model(
        self, request: HttpRequest, obj: ApiClient, form: ModelForm[ApiClient], change: bool
    ) -> None:
        """Through security.clients, as the commands and registrations write: KeyEvents name the
        signed-in user."""
        details = {name: getattr(obj, name) for name in EDITED}
        actor = request.user.get_username()
        if change:
            saved = clients.update_client(obj, actor=actor, reason=ADMIN_REASON, **details)
        else:
            saved = clients.create_client(actor=actor, reason=ADMIN_REASON, **details)
        obj.pk = saved.pk
        obj.refresh_from_db()

    # --- The client page ------------------------------------------------------------------------

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        client = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if client is not None and self.has_view_or_change_permission(request, client):
            extra.update(client_page_context(request, client))
        return super().change_view(request, object_id, form_url, extra)

    # --- Custom pages -----------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        custom = [
            self._route("<int:client_id>/keys/issue/", admin_views.issue_key_view, "issue_key"),
            self._route("keys/<int:key_id>/rotate/", admin_views.rotate_key_view, "rotate_key"),
            self._route("keys/<int:key_id>/retire/", admin_views.retire_key_view, "retire_key"),
            self._route(
                "<int:client_id>/identities/add/", admin_views.add_identity_view, "add_identity"
            ),
        ]
        # Ours first: the default "<path:object_id>/" pattern would swallow them otherwise.
        return custom + super().get_urls()

    def _route(self, route: str, view: AdminView, name: str) -> URLPattern:
        """A custom page behind the admin's login, staff and CSRF checks, never cached."""

        def bound(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            return view(self, request, *args, **kwargs)

        return path(route, self.admin_site.admin_view(bound), name=f"security_apiclient_{name}")


def credential_matches(term: str) -> QuerySet[ApiClient, PkRow]:
    """Ids of clients whose identity value contains `term` or whose key prefix starts with it;
    a fingerprint is found in any spelling (colons, spaces, upper case), as the admin shows it."""
    prefix = term.removeprefix(f"{keys.KEY_MARKER}_").rstrip("_").lower()
    found = Q(identities__value__icontains=term) | Q(keys__prefix__startswith=prefix)
    with suppress(ValueError):  # not a whole fingerprint: the other conditions decide
        found |= Q(identities__value=canonical_fingerprint(term))
    return ApiClient.objects.filter(found).values("pk")


def client_page_context(request: HttpRequest, client: ApiClient) -> dict[str, Any]:
    """Identities, keys and audit trail for the client page, each as the user may see it."""
    user = request.user
    context = {
        "identities": client.identities.order_by("kind", "value"),
        "certificates": uploaded_certificates(client),
        "can_add_identity": user.has_perm("security.change_apiclient"),
        "can_issue": user.has_perm("security.issue_apikey"),
    }
    if user.has_perm("security.view_apikey"):
        context["key_rows"] = key_rows(user, client)
    if user.has_perm("security.view_keyevent"):
        context["events"] = KeyEvent.objects.filter(client=client).order_by("-time")[:AUDIT_ROWS]
    if user.has_perm("security.view_requestaudit"):
        recent = RequestAudit.objects.filter(client=client).order_by("-time")
        context["requests"] = recent[:AUDIT_ROWS]
    return context


def uploaded_certificates(client: ApiClient) -> list[CertificateInfo]:
    """Each distinct uploaded certificate once, parsed, even when it gave several identities."""
    pems = (
        client.identities.exclude(certificate_pem="")
        .order_by("certificate_pem")
        .values_list("certificate_pem", flat=True)
        .distinct()
    )
    parsed = (admin_views.describe_certificate(pem) for pem in pems)
    return [summary for summary in parsed if summary is not None]


def key_rows(user: AbstractUser | AnonymousUser, client: ApiClient) -> list[KeyRow]:
    may_rotate = user.has_perm("security.rotate_apikey")
    may_retire = user.has_perm("security.retire_apikey")
    rows = []
    for key in client.keys.select_related("replaced_by").order_by("-created"):
        state = keys.current_state(key)
        rows.append(
            KeyRow(
                key=key,
                state=state,
                can_rotate=may_rotate and state == ApiKey.ACTIVE,
                can_retire=may_retire and state in (ApiKey.ACTIVE, ApiKey.ROTATING),
            )
        )
    return rows
