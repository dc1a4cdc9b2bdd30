"""Admin pages for key actions and certificate uploads on one API client.

Every action goes through security.keys / security.clients with the signed-in user as actor, so
the KeyEvent trail names a person. A new key is rendered only in the POST response that created
it: it is not stored, not put in the session or messages, and the response is never cached.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from . import clients, keys
from .forms import IdentityForm, IssueKeyForm, RetireKeyForm, RotateKeyForm
from .models import ApiClient, ApiKey
from .trust.certificates import CertificateError, CertificateInfo, parse_certificate

TEMPLATES = "admin/security/"
# A page of the client admin: (model admin, request, ids from the URL) -> response.
AdminView = Callable[..., HttpResponse]


def require_permission(codename: str) -> Callable[[AdminView], AdminView]:
    """Refuse with 403 unless the user holds security.<codename>, whatever the HTTP method."""

    def decorate(view: AdminView) -> AdminView:
        @wraps(view)
        def guarded(
            model_admin: ModelAdmin[Any], request: HttpRequest, *args: Any, **kwargs: Any
        ) -> HttpResponse:
            if not request.user.has_perm(f"security.{codename}"):
                raise PermissionDenied
            return view(model_admin, request, *args, **kwargs)

        return guarded

    return decorate


def posted(request: HttpRequest) -> QueryDict | None:
    """The form data of a POST, even an empty one (an empty QueryDict is falsy); None on GET."""
    return request.POST if request.method == "POST" else None


def actor_of(request: HttpRequest) -> str:
    return request.user.get_username()


def client_page(client: ApiClient) -> str:
    return reverse("admin:security_apiclient_change", args=[client.pk])


def page_context(
    model_admin: ModelAdmin[Any], request: HttpRequest, client: ApiClient, title: str, **extra: Any
) -> dict[str, Any]:
    """What admin templates expect (site header, breadcrumbs), plus the page's own values."""
    return {
        **model_admin.admin_site.each_context(request),
        "opts": ApiClient._meta,
        "original": client,
        "client": client,
        "title": title,
        "client_url": client_page(client),
        **extra,
    }


# --- Keys -------------------------------------------------------------------------------------


@require_permission("issue_apikey")
def issue_key_view(
    model_admin: ModelAdmin[Any], request: HttpRequest, client_id: int
) -> HttpResponse:
    client = get_object_or_404(ApiClient, pk=client_id)
    form = IssueKeyForm(posted(request))
    if request.method == "POST" and form.is_valid():
        expires_at = form.cleaned_data["expires_at"]
        key, plaintext = keys.issue_key(client, actor_of(request), expires_at=expires_at)
        return show_new_key(model_admin, request, client, key, plaintext, replaced=None)
    context = page_context(model_admin, request, client, f"Issue an API key for {client}")
    return TemplateResponse(request, TEMPLATES + "key_issue.html", {**context, "form": form})


@require_permission("rotate_apikey")
def rotate_key_view(
    model_admin: ModelAdmin[Any], request: HttpRequest, key_id: int
) -> HttpResponse:
    key = get_object_or_404(ApiKey.objects.select_related("client"), pk=key_id)
    form = RotateKeyForm(posted(request))
    if request.method == "POST" and form.is_valid():
        grace = keys.GRACE_PERIODS[form.cleaned_data["grace"]]
        try:
            new, plaintext = keys.rotate_key(
                key, grace, actor_of(request), form.cleaned_data["reason"]
            )
        except keys.KeyActionError as exc:
            form.add_error(None, str(exc))
        else:
            return show_new_key(model_admin, request, key.client, new, plaintext, replaced=key)
    context = page_context(model_admin, request, key.client, f"Rotate API key {key.prefix}")
    return TemplateResponse(
        request, TEMPLATES + "key_rotate.html", {**context, "form": form, "key": key}
    )


@require_permission("retire_apikey")
def retire_key_view(
    model_admin: ModelAdmin[Any], request: HttpRequest, key_id: int
) -> HttpResponse:
    key = get_object_or_404(ApiKey.objects.select_related("client"), pk=key_id)
    form = RetireKeyForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            keys.retire_key(key, actor_of(request), form.cleaned_data["reason"])
        except keys.KeyActionError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Key {key.prefix} is retired. {propagation_note()}")
            return redirect(client_page(key.client))
    context = page_context(
        model_admin,
        request,
        key.client,
        f"Retire API key {key.prefix}",
        form=form,
        key=key,
        propagation=propagation_note(),
    )
    return TemplateResponse(request, TEMPLATES + "key_retire.html", context)


def propagation_note() -> str:
    seconds = settings.SECURITY_CACHE_SECONDS
    unit = "second" if seconds == 1 else "seconds"
    return f"It stops working in every server process within {seconds} {unit}."


def show_new_key(
    model_admin: ModelAdmin[Any],
    request: HttpRequest,
    client: ApiClient,
    key: ApiKey,
    plaintext: str,
    replaced: ApiKey | None,
) -> TemplateResponse:
    """The one and only page that ever shows this key."""
    context = page_context(
        model_admin,
        request,
        client,
        f"New API key {key.prefix} for {client}",
        key=key,
        plaintext=plaintext,
        replaced=replaced,
    )
    return TemplateResponse(request, TEMPLATES + "key_shown.html", context)


# --- Certificate identities -------------------------------------------------------------------


@require_permission("change_apiclient")
def add_identity_view(
    model_admin: ModelAdmin[Any], request: HttpRequest, client_id: int
) -> HttpResponse:
    client = get_object_or_404(ApiClient, pk=client_id)
    form = IdentityForm(posted(request), request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            added = clients.add_identity(
                client,
                form.cleaned_data["kind"],
                value=form.cleaned_data["value"],
                certificate_pem=form.cleaned_data["certificate_pem"],
                actor=actor_of(request),
            )
        except clients.ClientError as exc:
            form.add_error(None, str(exc))
        else:
            names = ", ".join(identity.value for identity in added)
            messages.success(request, f"Added {len(added)} identity(ies): {names}")
            return redirect(client_page(client))
    context = page_context(model_admin, request, client, f"Add a certificate identity to {client}")
    return TemplateResponse(request, TEMPLATES + "identity_add.html", {**context, "form": form})


def describe_certificate(pem: str) -> CertificateInfo | None:
    """The parsed certificate, or None when the stored PEM no longer parses."""
    try:
        return parse_certificate(pem)
    except CertificateError:
        return None
