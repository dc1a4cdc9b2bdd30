"""Making the toolkit's CAs, CRLs and clients known to this server's database."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from django.db import transaction

from security.anchors import AnchorError, Registration, register_anchor
from security.clients import ClientError, add_identity, create_client, set_scopes
from security.models import ApiClient, CertificateIdentity, TrustAnchor
from security.trust import crls
from security.trust.certificates import alt_names, fingerprint

from . import PkiError
from .layout import CaDirectory


def crl_source(ca: CaDirectory) -> str:
    """Where refreshcrls should read the CA's CRL: its published URL, else the local file."""
    return ca.info().crl_url or str(ca.crl_der_file.resolve())


def register_ca(ca: CaDirectory, *, actor: str) -> Registration:
    """The CA as a TrustAnchor of its community (created if new), with its current CRL stored."""
    info = ca.info()
    try:
        registration = register_anchor(
            ca.certificate(),
            info.community,
            info.kind,
            crl_source(ca),
            community_name=info.name,
            actor=actor,
        )
    except AnchorError as error:
        raise PkiError(str(error)) from error
    if ca.crl_der_file.exists():
        store_crl(registration.anchor, ca.crl_der_file.read_bytes())
    return registration


def registered_anchor(ca: CaDirectory) -> TrustAnchor | None:
    return TrustAnchor.objects.filter(fingerprint_sha256=fingerprint(ca.certificate())).first()


def store_crl(anchor: TrustAnchor, crl: x509.CertificateRevocationList | bytes) -> None:
    """Store a CRL just published (or its DER/PEM bytes) through the trust core's one writer."""
    try:
        crls.store_crl(anchor, crls.parse_crl(crl) if isinstance(crl, bytes) else crl)
    except crls.CrlError as error:
        raise PkiError(f"CRL not stored: {error}") from error


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
    if scopes is not None:
        set_scopes(client, scopes, actor)
    return client, False


def _add_missing_identities(
    client: ApiClient, kind: str, pem: str, cert: x509.Certificate, actor: str
) -> list[CertificateIdentity]:
    # A reissued certificate for the same FQDN is already recognised by its DNS identity.
    if kind == CertificateIdentity.DNS:
        values = alt_names(cert, x509.DNSName)
        mine = set(client.identities.filter(kind=kind).values_list("value", flat=True))
        # No SAN DNS name at all: add_identity says so, rather than this adding nothing.
        if values and {v.lower() for v in values} <= mine:
            return []
    return add_identity(client, kind, certificate_pem=pem, actor=actor)
