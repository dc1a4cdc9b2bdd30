"""Admin pages for trust material and the audit records.

Trust anchors are managed by administrators (certificates are parsed and checked by the same code
as `addtrustanchor`); keys are changed only through the client page's actions; audit records are
never changed by anyone.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from django import forms
from django.contrib import admin
from django.db.models import Model
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from .anchors import (
    AnchorError,
    check_anchor,
    checked_crl_source,
    register_anchor,
    save_community,
    set_crl_source,
)
from .models import ApiKey, KeyEvent, RequestAudit, RevocationList, TrustAnchor, TrustCommunity
from .trust.certificates import CertificateError, load_pem_certificate


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records that are written by the system only: viewable with view permission, never edited."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
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


def clean_crl_source(form: forms.ModelForm) -> str:
    """The form's CRL source as security.anchors would store it, or the reason it is refused."""
    try:
        return checked_crl_source(form.cleaned_data.get("crl_source", ""))
    except AnchorError as error:
        raise forms.ValidationError(str(error)) from None


class TrustAnchorInlineForm(forms.ModelForm):
    clean_crl_source = clean_crl_source


class TrustAnchorInline(admin.TabularInline):
    model = TrustAnchor
    form = TrustAnchorInlineForm
    fields = ("kind", "subject", "fingerprint_sha256", "not_after", "crl_source")
    readonly_fields = ("kind", "subject", "fingerprint_sha256", "not_after")
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(TrustCommunity)
class TrustCommunityAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "active", "created")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [TrustAnchorInline]

    def save_model(
        self,
        request: HttpRequest,
        obj: TrustCommunity,
        form: forms.ModelForm[TrustCommunity],
        change: bool,
    ) -> None:
        """Through security.anchors, audited: switching `active` changes what is trusted."""
        save_community(obj, request.user.get_username())

    def save_formset(
        self,
        request: HttpRequest,
        form: forms.ModelForm[TrustCommunity],
        formset: BaseInlineFormSet[Any, Any, Any],
        change: bool,
    ) -> None:
        if formset.model is not TrustAnchor:
            super().save_formset(request, form, formset, change)
            return
        # The inline adds and deletes nothing; a CRL source it edits goes through the service,
        # audited. commit=False only fills changed_objects, which the admin's history reads.
        formset.save(commit=False)
        actor = request.user.get_username()
        for anchor, _changed in formset.changed_objects:
            set_crl_source(anchor, anchor.crl_source, actor)


class TrustAnchorForm(forms.ModelForm):
    """A new anchor is checked as `addtrustanchor` checks it: a CA, and chaining to the root."""

    class Meta:
        model = TrustAnchor
        fields = ("community", "kind", "certificate_pem", "crl_source")

    clean_crl_source = clean_crl_source
    # Set by clean() on a new anchor: the parsed certificate save_model registers.
    certificate: x509.Certificate

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean returns; the stubs allow None
        if self.instance.pk or self.errors:
            return cleaned
        try:
            certificate = load_pem_certificate(cleaned["certificate_pem"])
        except CertificateError:
            raise forms.ValidationError("The certificate is not a PEM X.509 certificate") from None
        try:
            check_anchor(certificate, cleaned["community"], cleaned["kind"])
        except AnchorError as error:
            raise forms.ValidationError(str(error)) from None
        self.certificate = certificate
        return cleaned


@admin.register(TrustAnchor)
class TrustAnchorAdmin(admin.ModelAdmin):
    form = TrustAnchorForm
    list_display = ("subject", "community", "kind", "not_after", "crl_source")
    list_filter = ("community", "kind")
    search_fields = ("subject", "fingerprint_sha256")
    readonly_fields = ("subject", "fingerprint_sha256", "not_before", "not_after")

    def get_readonly_fields(
        self, request: HttpRequest, obj: TrustAnchor | None = None
    ) -> tuple[str, ...]:
        # A stored anchor's certificate is fixed: replacing it is a new anchor, not an edit.
        if obj is not None:
            return (*self.readonly_fields, "community", "kind", "certificate_pem")
        return self.readonly_fields

    def save_model(
        self, request: HttpRequest, obj: TrustAnchor, form: TrustAnchorForm, change: bool
    ) -> None:
        """Through security.anchors, as the commands write: KeyEvents name the signed-in user."""
        actor = request.user.get_username()
        if change:
            # Only the CRL source is editable on a stored anchor (get_readonly_fields).
            set_crl_source(obj, obj.crl_source, actor)
            return
        registration = register_anchor(
            form.certificate, obj.community.slug, obj.kind, obj.crl_source, actor=actor
        )
        obj.pk = registration.anchor.pk


@admin.register(RevocationList)
class RevocationListAdmin(ReadOnlyAdmin):
    list_display = ("issuer", "this_update", "next_update", "fetched_at", "last_error")
    exclude = ("crl_der",)
