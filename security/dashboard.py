"""The trust and expiry dashboard of the admin: reads the rows, lets security.expiry judge them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from . import expiry
from .directory_port import directory
from .models import ApiKey, CertificateIdentity, RevocationList, TrustAnchor

TEMPLATE = "admin/security/dashboard.html"
# Either permission is enough: support staff (clients) and administrators (everything) see it.
REQUIRED_ANY = ("security.view_trustanchor", "security.view_apiclient")
LIVE_KEY_STATES = (ApiKey.ACTIVE, ApiKey.ROTATING)


def can_view(user: AbstractBaseUser | AnonymousUser) -> bool:
    return (
        isinstance(user, AbstractUser)
        and user.is_active
        and user.is_staff
        and any(user.has_perm(p) for p in REQUIRED_ANY)
    )


def trust_dashboard(request: HttpRequest) -> TemplateResponse:
    """The page; mounted behind admin.site.admin_view, so sign-in (and OTP) come first."""
    if not can_view(request.user):
        raise PermissionDenied
    now = timezone.now()
    context = {
        **admin.site.each_context(request),
        "title": "Trust and expiry",
        "window_days": expiry.EXPIRY_WINDOW.days,
        "unused_days": expiry.UNUSED_AFTER.days,
        "renew_months": expiry.RENEW_AFTER_MONTHS,
        "anchors": anchor_rows(now),
        "expiring": expiry.soonest_first(expiring_items(now)),
        "unused_keys": unused_keys(now),
        "renewal_due": renewal_due(now),
    }
    return TemplateResponse(request, TEMPLATE, context)


def anchor_rows(now: datetime) -> list[dict[str, Any]]:
    """Each CA of each community with its CRL refresh state."""
    anchors = TrustAnchor.objects.select_related("community", "crl").order_by(
        "community__name", "kind", "subject"
    )
    return [{"anchor": anchor, **_crl_status(anchor, now)} for anchor in anchors]


def _crl_status(anchor: TrustAnchor, now: datetime) -> dict[str, Any]:
    try:
        crl = anchor.crl
    except RevocationList.DoesNotExist:
        crl = None
    has_crl = crl is not None and bool(crl.crl_der)
    next_update = crl.next_update if crl else None
    return {
        "crl_state": expiry.crl_state(has_crl, next_update, now),
        "fetched_at": crl.fetched_at if crl else None,
        "next_update": next_update,
        "last_error": crl.last_error if crl else "",
    }


def expiring_items(now: datetime) -> Iterator[expiry.Expiring | None]:
    """Client and endpoint certificates, trust anchors and live keys inside the window."""
    horizon = now + expiry.EXPIRY_WINDOW
    for identity in CertificateIdentity.objects.filter(not_after__lte=horizon).select_related(
        "client"
    ):
        label = f"{identity.client.name}: {identity}"
        yield expiry.expiring("Client certificate", label, identity.not_after, now)
    for anchor in TrustAnchor.objects.filter(not_after__lte=horizon).select_related("community"):
        yield expiry.expiring("Trust anchor", str(anchor), anchor.not_after, now)
    keys = ApiKey.objects.filter(state__in=LIVE_KEY_STATES, expires_at__lte=horizon)
    for key in keys.select_related("client"):
        yield expiry.expiring("API key", f"{key.client.name}: {key.prefix}…", key.expires_at, now)
    yield from _expiring_endpoint_certificates(now)


def _expiring_endpoint_certificates(now: datetime) -> Iterator[expiry.Expiring | None]:
    # An indexed query: the directory files each certificate's expirationDate when it is written.
    horizon = now + expiry.EXPIRY_WINDOW
    for logical_id, expires in directory().endpoint_certificate_expiries(None, horizon):
        yield expiry.expiring("Endpoint certificate", f"Endpoint/{logical_id}", expires, now)


def unused_keys(now: datetime) -> list[ApiKey]:
    """Live keys not used for UNUSED_AFTER (or never used since created that long ago)."""
    keys = ApiKey.objects.filter(state__in=LIVE_KEY_STATES).select_related("client")
    unused = [key for key in keys if expiry.key_unused(key.last_used_at, key.created, now)]
    return sorted(unused, key=lambda key: key.last_used_at or key.created)


def renewal_due(now: datetime) -> list[expiry.RenewalDue]:
    """Client certificates and anchors older than the community's renewal age."""
    due: list[expiry.RenewalDue | None] = []
    for identity in CertificateIdentity.objects.select_related("client").filter(
        ~Q(certificate_pem="") | Q(not_after__isnull=False)
    ):
        not_before = expiry.certificate_not_before(identity.certificate_pem)
        label = f"{identity.client.name}: {identity}"
        due.append(
            expiry.renewal_due("Client certificate", label, now, not_before, identity.not_after)
        )
    for anchor in TrustAnchor.objects.select_related("community"):
        due.append(expiry.renewal_due("Trust anchor", str(anchor), now, anchor.not_before))
    return [item for item in due if item is not None]
