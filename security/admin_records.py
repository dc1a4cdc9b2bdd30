"""Admin pages for trust material and the audit records.

Trust anchors are managed by administrators (certificates are parsed and checked by the same code
as `addtrustanchor`); keys are changed only through the client page's actions; audit records are
never changed by anyone.
"""

from cryptography import x509
from django import forms
from django.contrib import admin

from .anchors import (
    AnchorError,
    register_anchor,
    require_ca,
    require_chains_to_root,
    require_self_signed,
)
from .models import ApiKey, KeyEvent, RequestAudit, RevocationList, TrustAnchor, TrustCommunity


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records that are written by the system only: viewable with view permission, never edited."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RequestAudit)
class RequestAuditAdmin(ReadOnlyAdmin):
    list_display = (
        "time",
        "client_name",
        "method",
        "path",
        "interaction",
        "status",
        "outcome",
        "key_prefix",
        "duration_ms",
    )
    list_filter = ("outcome", "status", "interaction", "resource_type")
    search_fields = (
        "client_name",
        "key_prefix",
        "certificate_fingerprint",
        "path",
        "token_subject",
    )
    date_hierarchy = "time"
    show_full_result_count = False


@admin.register(KeyEvent)
class KeyEventAdmin(ReadOnlyAdmin):
    list_display = ("time", "actor", "action", "client", "key_prefix", "reason")
    list_filter = ("action",)
    search_fields = ("actor", "key_prefix", "client__name", "reason")
    date_hierarchy = "time"


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = (
        "prefix",
        "client",
        "state",
        "created",
        "expires_at",
        "grace_until",
        "last_used_at",
        "last_used_ip",
    )
    list_filter = ("state",)
    search_fields = ("prefix", "client__name")
    exclude = ("key_hash",)


class TrustAnchorInline(admin.TabularInline):
    model = TrustAnchor
    fields = ("kind", "subject", "fingerprint_sha256", "not_after", "crl_source")
    readonly_fields = ("kind", "subject", "fingerprint_sha256", "not_after")
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(TrustCommunity)
class TrustCommunityAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "active", "created")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [TrustAnchorInline]


class TrustAnchorForm(forms.ModelForm):
    """A new anchor is checked as `addtrustanchor` checks it: a CA, and chaining to the root."""

    class Meta:
        model = TrustAnchor
        fields = ("community", "kind", "certificate_pem", "crl_source")

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk or self.errors:
            return cleaned
        try:
            certificate = x509.load_pem_x509_certificate(cleaned["certificate_pem"].encode())
        except ValueError:
            raise forms.ValidationError("The certificate is not a PEM X.509 certificate") from None
        try:
            _check_anchor(certificate, cleaned["community"], cleaned["kind"])
        except AnchorError as error:
            raise forms.ValidationError(str(error)) from None
        self.certificate = certificate
        return cleaned


def _check_anchor(certificate, community, kind):
    require_ca(certificate)
    if kind == TrustAnchor.ROOT:
        require_self_signed(certificate)
    else:
        require_chains_to_root(certificate, community)


@admin.register(TrustAnchor)
class TrustAnchorAdmin(admin.ModelAdmin):
    form = TrustAnchorForm
    list_display = ("subject", "community", "kind", "not_after", "crl_source")
    list_filter = ("community", "kind")
    search_fields = ("subject", "fingerprint_sha256")
    readonly_fields = ("subject", "fingerprint_sha256", "not_before", "not_after")

    def get_readonly_fields(self, request, obj=None):
        # A stored anchor's certificate is fixed: replacing it is a new anchor, not an edit.
        if obj is not None:
            return (*self.readonly_fields, "community", "kind", "certificate_pem")
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        registration = register_anchor(
            form.certificate, obj.community.slug, obj.kind, obj.crl_source
        )
        obj.pk = registration.anchor.pk


@admin.register(RevocationList)
class RevocationListAdmin(ReadOnlyAdmin):
    list_display = ("issuer", "this_update", "next_update", "fetched_at", "last_error")
    exclude = ("crl_der",)
