"""API clients and the certificate identities that recognise them; every change is a KeyEvent."""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import partial

from cryptography import x509
from django.db import IntegrityError, transaction

from .keys import forget_client, record_event
from .models import ApiClient, CertificateIdentity, TrustCommunity
from .trust.certificates import (
    CertificateError,
    alt_names,
    canonical_fingerprint,
    fingerprint,
    load_pem_certificate,
    subject,
)

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
# Plain FQDNs only: the certificate check never matches a wildcard, so one would never work.
_DNS_NAME = re.compile(rf"({_LABEL}\.)*{_LABEL}")


class ClientError(ValueError):
    """The client or identity cannot be created or changed as asked."""


def create_client(
    name: str,
    organization: str = "",
    community: TrustCommunity | None = None,
    allowed_scopes: str = "",
    *,
    actor: str,
    contact: str = "",
    status: str = ApiClient.ACTIVE,
    reason: str = "",
) -> ApiClient:
    """Register a client; it can do nothing until it has an identity and a key."""
    name = _checked_name(name)
    scopes = " ".join(allowed_scopes.split())
    try:
        with transaction.atomic():
            client = ApiClient.objects.create(
                name=name,
                organization=organization,
                community=community,
                allowed_scopes=scopes,
                contact=contact,
            )
            record_event(actor, "client-created", client, detail=f"scopes: {scopes}"[:500])
            if status != ApiClient.ACTIVE:
                set_status(client, status, actor, reason)
    except IntegrityError as exc:
        raise ClientError(f"a client named {name!r} already exists") from exc
    return client


def update_client(
    client: ApiClient,
    *,
    actor: str,
    name: str,
    organization: str,
    community: TrustCommunity | None,
    allowed_scopes: str,
    contact: str,
    status: str,
    reason: str = "",
) -> ApiClient:
    """Change a client's details; a change of name, organisation, community or contact is a
    KeyEvent naming the fields, and so is a scope or status change (see set_scopes and
    set_status). `client` is brought in step with the stored row."""
    name = _checked_name(name)
    details = {
        "name": name,
        "organization": organization,
        "community": community,
        "contact": contact,
    }
    try:
        with transaction.atomic():
            before = ApiClient.objects.select_for_update().get(pk=client.pk)
            changed = [field for field, value in details.items() if getattr(before, field) != value]
            ApiClient.objects.filter(pk=client.pk).update(**details)
            if changed:
                # Field names only: a contact is personal data and the log needs no copy of it.
                detail = f"changed: {', '.join(changed)}"
                record_event(actor, "client-details-changed", before, detail=detail)
            # Cached key and certificate answers carry the client's row, its community among it.
            forget_client(client.pk)
            transaction.on_commit(partial(forget_client, client.pk))
            stored = ApiClient.objects.get(pk=client.pk)
            set_scopes(stored, allowed_scopes, actor)
            if status != stored.status:
                set_status(stored, status, actor, reason)
    except IntegrityError as exc:
        raise ClientError(f"a client named {name!r} already exists") from exc
    client.refresh_from_db()
    return client


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ClientError("a client needs a name")
    return name


def set_scopes(client: ApiClient, allowed_scopes: str, actor: str) -> ApiClient:
    """The scopes the client may ever be granted; a change is a KeyEvent, before and after."""
    scopes = " ".join(allowed_scopes.split())
    before = client.allowed_scopes
    if scopes == before:
        return client
    with transaction.atomic():
        ApiClient.objects.filter(pk=client.pk).update(allowed_scopes=scopes)
        detail = f"scopes: {before or '(none)'} -> {scopes or '(none)'}"
        record_event(actor, "client-scopes-changed", client, detail=detail[:500])
        # Cached key rows carry the client's scopes; refresh them as a status change does.
        forget_client(client.pk)
        transaction.on_commit(partial(forget_client, client.pk))
    client.allowed_scopes = scopes
    return client


def set_status(client: ApiClient, status: str, actor: str, reason: str = "") -> ApiClient:
    """Suspend or reactivate, whichever `status` asks for."""
    if status == ApiClient.SUSPENDED:
        return suspend_client(client, actor, reason)
    if status == ApiClient.ACTIVE:
        return reactivate_client(client, actor, reason)
    raise ClientError(f"unknown client status {status!r}")


def add_identity(
    client: ApiClient, kind: str, value: str = "", certificate_pem: str = "", *, actor: str
) -> list[CertificateIdentity]:
    """Recognise `client` by a DNS name, subject DN or fingerprint, typed or read from a PEM."""
    if kind not in dict(CertificateIdentity.KINDS):
        raise ClientError(f"unknown identity kind {kind!r}")
    if certificate_pem:
        certificate = load_certificate(certificate_pem)
        values = identity_values(certificate, kind)
        not_after = certificate.not_valid_after_utc
    else:
        values, not_after = [normalise(kind, value)], None
    return _store_identities(client, kind, values, certificate_pem, not_after, actor)


def _store_identities(
    client: ApiClient,
    kind: str,
    values: list[str],
    certificate_pem: str,
    not_after: datetime | None,
    actor: str,
) -> list[CertificateIdentity]:
    identities = []
    try:
        with transaction.atomic():
            for value in values:
                identity = CertificateIdentity.objects.create(
                    client=client,
                    kind=kind,
                    value=value,
                    certificate_pem=certificate_pem,
                    not_after=not_after,
                )
                record_event(actor, "identity-added", client, detail=f"{kind}: {value}"[:500])
                identities.append(identity)
    except IntegrityError as exc:
        raise ClientError(f"a {kind} identity in {values} is already registered") from exc
    return identities


def load_certificate(pem: str | bytes) -> x509.Certificate:
    try:
        return load_pem_certificate(pem)
    except CertificateError as exc:
        raise ClientError("the file is not a PEM certificate") from exc


def identity_values(certificate: x509.Certificate, kind: str) -> list[str]:
    """What the certificate check will compare: SAN DNS names, the RFC 4514 subject, or SHA-256."""
    if kind == CertificateIdentity.FINGERPRINT:
        return [fingerprint(certificate)]
    if kind == CertificateIdentity.SUBJECT:
        return [subject(certificate)]
    found = alt_names(certificate, x509.DNSName)
    if not found:
        raise ClientError("the certificate has no SAN DNS names")
    names = sorted({normalise(kind, name) for name in found if not name.startswith("*")})
    if not names:
        raise ClientError("the certificate has no SAN DNS names other than wildcards")
    return names


def normalise(kind: str, value: str) -> str:
    """The canonical spelling of a typed identity, so lookups match what certificates carry."""
    value = (value or "").strip()
    if kind == CertificateIdentity.FINGERPRINT:
        try:
            value = canonical_fingerprint(value)
        except ValueError as exc:
            raise ClientError(str(exc)) from exc
    elif kind == CertificateIdentity.DNS:
        value = value.lower().rstrip(".")
        if len(value) > 253 or not _DNS_NAME.fullmatch(value):
            raise ClientError(f"{value!r} is not a DNS name")
    elif not value:
        raise ClientError("a subject DN cannot be empty")
    return value


def suspend_client(client: ApiClient, actor: str, reason: str = "") -> ApiClient:
    """Refuse every request of the client, whatever key or certificate it presents."""
    return _set_status(client, ApiClient.SUSPENDED, "client-suspended", actor, reason)


def reactivate_client(client: ApiClient, actor: str, reason: str = "") -> ApiClient:
    return _set_status(client, ApiClient.ACTIVE, "client-reactivated", actor, reason)


def _set_status(client: ApiClient, status: str, action: str, actor: str, reason: str) -> ApiClient:
    with transaction.atomic():
        ApiClient.objects.filter(pk=client.pk).update(status=status)
        record_event(actor, action, client, reason=reason)
        # This process sees the change at commit; others within SECURITY_CACHE_SECONDS.
        forget_client(client.pk)
        transaction.on_commit(partial(forget_client, client.pk))
    client.status = status
    return client


def set_oauth_credentials(
    client: ApiClient, client_id: str, jwks: str, udap_uri: str = "", *, actor: str
) -> ApiClient:
    """Let `client` get tokens from the built-in server: its client_id and public keys (JWKS)."""
    client_id = client_id.strip()
    if not client_id or len(client_id) > 64:
        raise ClientError("a client_id is 1 to 64 characters")
    kids = public_jwks_kids(jwks)
    try:
        with transaction.atomic():
            ApiClient.objects.filter(pk=client.pk).update(
                oauth_client_id=client_id, jwks=jwks, udap_uri=udap_uri[:500]
            )
            detail = f"client_id {client_id}; key ids {', '.join(kids)}"
            record_event(actor, "oauth-keys-set", client, detail=detail[:500])
    except IntegrityError as exc:
        raise ClientError(f"client_id {client_id!r} is taken") from exc
    client.oauth_client_id, client.jwks, client.udap_uri = client_id, jwks, udap_uri[:500]
    return client


def public_jwks_kids(jwks: str) -> list[str]:
    """The key ids of a JWKS of public EC/RSA keys; ClientError for anything else."""
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet

    try:
        keys = KeySet.import_key_set(json.loads(jwks))
    except (ValueError, TypeError, KeyError, JoseError) as exc:
        raise ClientError("not a JWKS") from exc
    if not keys.keys or any(key.is_private or key.key_type not in ("EC", "RSA") for key in keys):
        raise ClientError("a JWKS of public EC or RSA keys is needed")
    return [str(key.kid or "") for key in keys]
