"""Making the toolkit's CAs, CRLs and clients known to this server's database."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.db import transaction
from django.utils import timezone

from security import truststore
from security.anchors import AnchorError, Registration, register_anchor
from security.clients import ClientError, add_identity, create_client
from security.crl import CrlError, check_crl_issued_by
from security.keys import record_event
from security.models import ApiClient, CertificateIdentity, RevocationList, TrustAnchor
from security.truststore import fingerprint

from . import PkiError
from .layout import CaDirectory


def crl_source(ca: CaDirectory) -> str:
    """Where refreshcrls should read the CA's CRL: its published URL, else the local file."""
    return ca.info().crl_url or str(ca.crl_der_file.resolve())


def register_ca(ca: CaDirectory) -> Registration:
    """The CA as a TrustAnchor of its community (created if new), with its current CRL stored."""
    info = ca.info()
    try:
        registration = register_anchor(
            ca.certificate(), info.community, info.kind, crl_source(ca), community_name=info.name
        )
    except AnchorError as error:
        raise PkiError(str(error)) from error
    if ca.crl_der_file.exists():
        store_crl(registration.anchor, x509.load_der_x509_crl(ca.crl_der_file.read_bytes()))
    return registration


def registered_anchor(ca: CaDirectory) -> TrustAnchor | None:
    return TrustAnchor.objects.filter(fingerprint_sha256=fingerprint(ca.certificate())).first()


def store_crl(anchor: TrustAnchor, crl: x509.CertificateRevocationList) -> None:
    """Store a CRL just published, with the checks refreshcrls applies to a fetched one."""
    try:
        check_crl_issued_by(crl, x509.load_pem_x509_certificate(anchor.certificate_pem.encode()))
    except CrlError as error:
        raise PkiError(f"CRL not stored: {error}") from error
    with transaction.atomic():
        stored = RevocationList.objects.select_for_update().filter(issuer=anchor).first()
        # Never replace a newer CRL: an older one could un-revoke a certificate.
        if stored and stored.this_update and crl.last_update_utc < stored.this_update:
            raise PkiError("CRL not stored: the server already holds a newer one")
        RevocationList.objects.update_or_create(issuer=anchor, defaults=_crl_row(crl))
    truststore.invalidate()


def _crl_row(crl: x509.CertificateRevocationList) -> dict:
    now = timezone.now()
    return {
        "crl_der": crl.public_bytes(Encoding.DER),
        "this_update": crl.last_update_utc,
        "next_update": crl.next_update_utc,
        "fetched_at": now,
        "last_attempt_at": now,
        "last_error": "",
    }


@dataclass(frozen=True)
class ClientRegistration:
    client: ApiClient
    created: bool
    identities: list[CertificateIdentity]


def register_client(
    name: str,
    cert: x509.Certificate,
    pem: str,
    identity_kind: str,
    *,
    organization: str = "",
    scopes: str | None = None,
    ca: CaDirectory,
    actor: str,
) -> ClientRegistration:
    """Create or update the ApiClient `name` and recognise it by `cert` (DNS name or pin)."""
    anchor = registered_anchor(ca)
    if anchor is None:
        raise PkiError("register the CA first (pki_init_community --register): it is not trusted")
    try:
        with transaction.atomic():
            client, created = _client(name, organization, anchor, scopes, actor)
            identities = _add_missing_identities(client, identity_kind, pem, cert, actor)
    except ClientError as error:
        raise PkiError(str(error)) from error
    return ClientRegistration(client, created, identities)


def _client(
    name: str, organization: str, anchor: TrustAnchor, scopes: str | None, actor: str
) -> tuple[ApiClient, bool]:
    client = ApiClient.objects.filter(name=name.strip()).first()
    if client is None:
        created = create_client(name, organization, anchor.community, scopes or "", actor=actor)
        return created, True
    if client.community_id not in (None, anchor.community_id):
        raise PkiError(f"client {client.name!r} belongs to another trust community")
    if scopes is not None and " ".join(scopes.split()) != client.allowed_scopes:
        client.allowed_scopes = " ".join(scopes.split())
        client.save(update_fields=["allowed_scopes"])
        record_event(actor, "client-scopes-changed", client, detail=client.allowed_scopes[:500])
    return client, False


def _add_missing_identities(
    client: ApiClient, kind: str, pem: str, cert: x509.Certificate, actor: str
) -> list[CertificateIdentity]:
    # A reissued certificate for the same FQDN is already recognised by its DNS identity.
    if kind == CertificateIdentity.DNS:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        values = names.get_values_for_type(x509.DNSName)
        mine = set(client.identities.filter(kind=kind).values_list("value", flat=True))
        if {v.lower() for v in values} <= mine:
            return []
    return add_identity(client, kind, certificate_pem=pem, actor=actor)
