"""Django admin for API clients: search by credential, the client page, and key actions.

Changes go through security.clients and security.keys so each one leaves a KeyEvent naming the
signed-in user. Keys themselves are never shown here, only their public prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import admin
from django.db.models import Q
from django.urls import path
from django.utils import timezone

# admin_records and admin_staff register pages (admin_staff: the user and group pages).
from . import admin_records, admin_staff, admin_views, clients, keys  # noqa: F401
from .models import ApiClient, ApiKey, KeyEvent, RequestAudit

AUDIT_ROWS = 50


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

    def has_delete_permission(self, request, obj=None):
        # Deleting would drop the keys without a trail; suspending a client is the way to stop it.
        return False

    # --- Search ---------------------------------------------------------------------------------

    def get_search_results(self, request, queryset, search_term):
        """Also find clients by a certificate identity's value or by a key prefix."""
        matched, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            by_credential = credential_matches(term)
            matched = matched | queryset.filter(pk__in=by_credential)
        return matched, may_have_duplicates

    # --- Saving through the services -----------------------------------------------------------

    def save_model(self, request, obj, form, change):
        actor = request.user.get_username()
        obj.allowed_scopes = " ".join(obj.allowed_scopes.split())
        if not change:
            self._create(obj, actor)
            return
        previous = ApiClient.objects.get(pk=obj.pk)
        wanted_status, obj.status = obj.status, previous.status
        obj.save()
        if "allowed_scopes" in form.changed_data:
            scopes_changed(obj, previous.allowed_scopes, actor)
        if wanted_status != previous.status:
            set_status(obj, wanted_status, actor)

    @staticmethod
    def _create(obj, actor):
        created = clients.create_client(
            obj.name, obj.organization, obj.community, obj.allowed_scopes, actor=actor
        )
        obj.pk, obj.created = created.pk, created.created
        obj._state.adding = False
        ApiClient.objects.filter(pk=obj.pk).update(contact=obj.contact)
        if obj.status != ApiClient.ACTIVE:
            set_status(obj, obj.status, actor)

    # --- The client page ------------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        client = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if client is not None and self.has_view_or_change_permission(request, client):
            extra.update(client_page_context(request, client))
        return super().change_view(request, object_id, form_url, extra)

    # --- Custom pages -----------------------------------------------------------------------------

    def get_urls(self):
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

    def _route(self, route, view, name):
        """A custom page behind the admin's login, staff and CSRF checks, never cached."""

        def bound(request, *args, **kwargs):
            return view(self, request, *args, **kwargs)

        return path(route, self.admin_site.admin_view(bound), name=f"security_apiclient_{name}")


def credential_matches(term: str):
    """Ids of clients whose identity value contains `term` or whose key prefix starts with it."""
    fingerprint = term.replace(":", "").replace(" ", "").lower()
    prefix = term.removeprefix(f"{keys.KEY_MARKER}_").rstrip("_").lower()
    found = (
        Q(identities__value__icontains=term)
        | Q(identities__value=fingerprint)
        | Q(keys__prefix__startswith=prefix)
    )
    return ApiClient.objects.filter(found).values("pk")


def scopes_changed(client, before, actor):
    detail = f"scopes: {before or '(none)'} -> {client.allowed_scopes or '(none)'}"
    keys.record_event(actor, "client-scopes-changed", client, detail=detail)
    # Cached key rows carry the client's scopes; refresh them like a status change does.
    keys.forget_client(client.pk)


def set_status(client, status, actor):
    change = clients.suspend_client if status == ApiClient.SUSPENDED else clients.reactivate_client
    change(client, actor, reason="changed in the web admin")


def client_page_context(request, client) -> dict:
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


def uploaded_certificates(client):
    """Each distinct uploaded certificate once, parsed, even when it gave several identities."""
    pems = (
        client.identities.exclude(certificate_pem="")
        .order_by("certificate_pem")
        .values_list("certificate_pem", flat=True)
        .distinct()
    )
    parsed = (admin_views.describe_certificate(pem) for pem in pems)
    return [summary for summary in parsed if summary is not None]


def key_rows(user, client) -> list[KeyRow]:
    may_rotate = user.has_perm("security.rotate_apikey")
    may_retire = user.has_perm("security.retire_apikey")
    rows = []
    for key in client.keys.select_related("replaced_by").order_by("-created"):
        state = effective_state(key)
        rows.append(
            KeyRow(
                key=key,
                state=state,
                can_rotate=may_rotate and state == ApiKey.ACTIVE,
                can_retire=may_retire and state in (ApiKey.ACTIVE, ApiKey.ROTATING),
            )
        )
    return rows


def effective_state(key: ApiKey) -> str:
    """The state the key check would act on now; the stored one is settled lazily."""
    now = timezone.now()
    if key.state == ApiKey.ACTIVE and key.expires_at and key.expires_at <= now:
        return ApiKey.EXPIRED
    if key.state == ApiKey.ROTATING and key.grace_until and key.grace_until <= now:
        return ApiKey.RETIRED
    return key.state
