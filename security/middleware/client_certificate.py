"""The client certificate: read from the trusted proxy's header, verified, tied to an API client."""

from __future__ import annotations

import logging
import re

from cryptography import x509
from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from common.outage import UNAVAILABLE_ERRORS

from .. import certclients
from ..context import SecurityContext
from ..models import ApiClient, CertificateIdentity
from ..proxyheaders import FORMATS, MalformedCertHeader, PresentedCertificate, parse
from ..refusal import Refusal
from ..trust.certificates import alt_names, subject
from ..verification import VerifiedCertificate, verify
from .base import CheckMiddleware

log = logging.getLogger(__name__)

# A fully qualified host name of LDH labels: no wildcards, no bare single labels.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
FQDN = re.compile(rf"(?:{_LABEL}\.)+{_LABEL}")
MAX_FQDN = 253


class ClientCertificateMiddleware(CheckMiddleware):
    """Requires (outside dev) a client certificate that verifies and belongs to an active client."""

    def check(self, request: HttpRequest, context: SecurityContext) -> None:
        establish_client(request, context)


def establish_client(request: HttpRequest, context: SecurityContext) -> None:
    """Verify the presented certificate and record it and its client in `context`, or refuse.

    Shared by the /fhir check and the token endpoint, so both trust exactly the same certificates.
    """
    presented = presented_certificate(request, context)
    if presented is None:
        # In dev the API-key check identifies the client instead.
        if settings.SECURITY_REQUIRE_CLIENT_CERT:
            raise Refusal("cert-missing")
        return
    # Recorded before verification so the audit names the certificate that was refused.
    context.certificate_fingerprint = presented.fingerprints[0]
    context.certificate_subject = presented.subject
    try:
        verified = verify(presented.leaf, presented.chain, timezone.now(), presented.fingerprints)
        client = identify_client(verified)
    except (Refusal, *UNAVAILABLE_ERRORS):
        raise  # a database that cannot answer is a 503 (CheckMiddleware, oauth views), no verdict
    except Exception as error:  # fail closed: an error here never authenticates anyone
        log.exception("client certificate check failed unexpectedly")
        raise Refusal("cert-untrusted") from error
    context.certificate = verified.leaf
    context.community = verified.community
    context.client = client


def presented_certificate(
    request: HttpRequest, context: SecurityContext
) -> PresentedCertificate | None:
    """The certificate the trusted proxy passed, or None when the client presented none."""
    if not context.from_trusted_proxy:
        return None  # TrustedProxyMiddleware has already removed any such header
    fmt = FORMATS.get(settings.SECURITY_CLIENT_CERT_FORMAT)
    if fmt is None:
        log.error("unknown SECURITY_CLIENT_CERT_FORMAT %r", settings.SECURITY_CLIENT_CERT_FORMAT)
        raise Refusal("cert-header-malformed")
    status = _proxy_verify_status(request, fmt.verify_header)
    if status == "NONE":
        return None
    value = request.META.get(fmt.cert_header, "").strip()
    if not value:
        if status == "SUCCESS":  # the proxy says it verified a certificate it did not pass on
            raise Refusal("cert-header-malformed")
        return None
    try:
        return parse(fmt, value)
    except MalformedCertHeader as error:
        log.info("client certificate header malformed: %s", error)
        raise Refusal("cert-header-malformed") from error


def _proxy_verify_status(request: HttpRequest, header: str | None) -> str:
    """SUCCESS, NONE or "" (not sent); a failed handshake verification is refused here."""
    if header is None:
        return ""
    status = request.META.get(header, "").strip()
    if status.upper().startswith("FAILED"):
        raise Refusal("cert-untrusted")
    if status.upper() not in ("", "SUCCESS", "NONE"):
        raise Refusal("cert-header-malformed")
    return status.upper()


def identify_client(verified: VerifiedCertificate) -> ApiClient:
    """The one registered client this certificate belongs to, or a Refusal.

    A found client is remembered (security/certclients.py) for SECURITY_CACHE_SECONDS at most;
    its community and status are compared on every request all the same.
    """
    client = certclients.remembered(verified.fingerprint, verified.community.pk)
    if client is None:
        client = _registered_client(verified)
        certclients.remember(verified.fingerprint, verified.community.pk, client)
    if client.community_id is not None and client.community_id != verified.community.pk:
        raise Refusal("client-unknown")
    if client.status != ApiClient.ACTIVE:
        raise Refusal("client-suspended")
    return client


def _registered_client(verified: VerifiedCertificate) -> ApiClient:
    """The one client whose identities match the certificate (a query), or a Refusal."""
    identities = CertificateIdentity.objects.filter(identity_query(verified)).select_related(
        "client"
    )
    clients = {identity.client_id: identity.client for identity in identities}
    if len(clients) != 1:
        if clients:  # two clients claim one certificate: trust neither
            log.warning("certificate %s matches several clients", verified.fingerprint)
        raise Refusal("client-unknown")
    (client,) = clients.values()
    return client


def identity_query(verified: VerifiedCertificate) -> Q:
    leaf = verified.leaf
    query = Q(kind=CertificateIdentity.FINGERPRINT, value=verified.fingerprint)
    query |= Q(kind=CertificateIdentity.SUBJECT, value=subject(leaf))
    for name in san_dns_names(leaf):
        query |= Q(kind=CertificateIdentity.DNS, value__iexact=name)
    return query


def san_dns_names(cert: x509.Certificate) -> list[str]:
    """The certificate's SAN DNS names that are plain FQDNs, lowercased; wildcards never match."""
    names = (name.lower().removesuffix(".") for name in alt_names(cert, x509.DNSName))
    return [name for name in names if len(name) <= MAX_FQDN and FQDN.fullmatch(name)]
