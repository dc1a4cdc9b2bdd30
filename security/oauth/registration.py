"""UDAP trusted dynamic client registration (UDAP Security IG §3, RFC 7591).

The software statement is a JWT whose x5c header carries the client's certificate chain. The
certificate is verified exactly as a mutual-TLS certificate (security.verification.verify: the
community chains, CRLs, validity and client usage), the statement's signature with that
certificate's key, and its claims per UDAP. Registration then creates the API client, or updates
the one this software already registered in the same community, through security.clients, so it
is audited like every other client change. The certificate's public key becomes the client's
key for private_key_jwt, its fingerprint an identity for mutual TLS.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeyParameters, RSAKey
from joserfc.jws import JWSRegistry

from .. import clients
from ..middleware.client_certificate import identity_query
from ..models import ApiClient, CertificateIdentity
from ..refusal import Refusal
from ..scopes import grantable_scopes
from ..trust.certificates import (
    CertificateError,
    alt_names,
    load_base64_der,
    organization,
    x5t_s256,
)
from ..verification import VerifiedCertificate, verify
from . import config, replay
from .errors import OAuthError

log = logging.getLogger(__name__)

ACTOR = "udap-registration"
MAX_STATEMENT_LENGTH = 64 * 1024
MAX_CHAIN = 8


class X5cRegistry(JWSRegistry):
    """joserfc's registry with room for a certificate chain in the header (x5c); its default
    512-byte header limit is meant for headers that name a key, not carry certificates."""

    max_header_length = 24 * 1024


@dataclass(frozen=True)
class Registration:
    client: ApiClient
    created: bool
    scope: str
    api_key: str  # only for a newly created client, shown once; "" otherwise


def register(body: Any) -> Registration:
    """Verify the request body and create or update the client; OAuthError when refused."""
    statement = _statement_of(body)
    header, leaf, chain = _header_and_chain(statement)
    verified = _verified_certificate(leaf, chain)
    claims = _verified_claims(statement, leaf, header["alg"])
    _check_identity(claims, leaf)
    _check_metadata(claims)
    try:
        replay.remember("register", claims["iss"], claims["jti"], _expiry(claims))
    except replay.Replayed:
        raise OAuthError("invalid_software_statement", "jti replayed") from None
    return _save(claims, verified)


def _statement_of(body: Any) -> str:
    if not isinstance(body, dict) or body.get("udap") != "1":
        raise OAuthError("invalid_client_metadata", 'udap must be "1"')
    statement = body.get("software_statement")
    if not isinstance(statement, str) or len(statement) > MAX_STATEMENT_LENGTH:
        raise OAuthError("invalid_software_statement", "software_statement missing")
    return statement


def _header_and_chain(
    statement: str,
) -> tuple[dict[str, Any], x509.Certificate, list[x509.Certificate]]:
    try:
        header = jws.extract_compact(statement.encode("ascii"), registry=X5cRegistry()).headers()
        encoded = header["x5c"]
        if not isinstance(encoded, list) or not 0 < len(encoded) <= MAX_CHAIN:
            raise ValueError("x5c must be a list of certificates")
        certs = [load_base64_der(_x5c_entry(item)) for item in encoded]
    except (JoseError, CertificateError, ValueError, KeyError, TypeError, UnicodeError):
        raise OAuthError("invalid_software_statement", "header or x5c unreadable") from None
    if header.get("alg") not in config.CLIENT_ALGORITHMS:
        raise OAuthError("invalid_software_statement", f"algorithm {header.get('alg')!r}")
    return header, certs[0], certs[1:]


def _verified_certificate(
    leaf: x509.Certificate, chain: list[x509.Certificate]
) -> VerifiedCertificate:
    try:
        return verify(leaf, chain, timezone.now())
    except Refusal as refusal:
        if refusal.reason.code == "crl-unavailable":
            raise OAuthError("temporarily_unavailable", refusal.reason.code) from None
        raise OAuthError("unapproved_software_statement", refusal.reason.code) from None
    except Exception:  # fail closed, as the mutual-TLS check does
        log.exception("software statement certificate check failed unexpectedly")
        raise OAuthError("unapproved_software_statement", "certificate check failed") from None


def _verified_claims(statement: str, leaf: x509.Certificate, algorithm: str) -> dict[str, Any]:
    key = _statement_key(leaf.public_key(), algorithm)
    try:
        registry = X5cRegistry(algorithms=[algorithm])
        claims = jwt.decode(statement, key, registry=registry).claims
        essential: jwt.ClaimsOption = {"essential": True}
        jwt.JWTClaimsRegistry(
            leeway=settings.SECURITY_JWT_LEEWAY_SECONDS,
            aud={**essential, "value": config.registration_endpoint()},
            iss=essential,
            sub=essential,
            exp=essential,
            iat=essential,
            jti=essential,
        ).validate(claims)
    except (JoseError, ValueError):
        raise OAuthError("invalid_software_statement", "signature or claims refused") from None
    if claims["aud"] not in (config.registration_endpoint(), [config.registration_endpoint()]):
        raise OAuthError("invalid_software_statement", "aud is not exactly the endpoint")
    if claims["exp"] - claims["iat"] > config.MAX_ASSERTION_SECONDS:
        raise OAuthError("invalid_software_statement", "valid for more than five minutes")
    return claims


def _statement_key(public: CertificatePublicKeyTypes, algorithm: str) -> ECKey | RSAKey:
    """The certificate's key for `algorithm` (ES* or RS*, as config.CLIENT_ALGORITHMS allows)."""
    if algorithm.startswith("ES") and isinstance(public, ec.EllipticCurvePublicKey):
        return ECKey.import_key(public)
    if algorithm.startswith("RS") and isinstance(public, rsa.RSAPublicKey):
        return RSAKey.import_key(public)
    raise OAuthError("invalid_software_statement", "algorithm does not fit the key")


def _check_identity(claims: dict[str, Any], leaf: x509.Certificate) -> None:
    """UDAP: iss = sub = a uniformResourceIdentifier in the certificate's subjectAltName."""
    if claims["iss"] != claims["sub"] or not isinstance(claims["iss"], str):
        raise OAuthError("invalid_software_statement", "iss and sub differ")
    if claims["iss"] not in alt_names(leaf, x509.UniformResourceIdentifier):
        raise OAuthError("unapproved_software_statement", "iss is not a SAN URI of the certificate")


def _check_metadata(claims: dict[str, Any]) -> None:
    name = claims.get("client_name")
    if not isinstance(name, str) or not name.strip():
        raise OAuthError("invalid_client_metadata", "client_name missing")
    if claims.get("grant_types") != [config.CLIENT_CREDENTIALS]:
        raise OAuthError("invalid_client_metadata", "only the client_credentials grant")
    if claims.get("token_endpoint_auth_method") != "private_key_jwt":
        raise OAuthError("invalid_client_metadata", "token_endpoint_auth_method")
    if not isinstance(claims.get("scope", ""), str) or not isinstance(claims["jti"], str):
        raise OAuthError("invalid_client_metadata", "scope or jti is not a string")


def _expiry(claims: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(claims["exp"] + settings.SECURITY_JWT_LEEWAY_SECONDS, UTC)


# --- creating or updating the client -----------------------------------------------------------


def _save(claims: dict[str, Any], verified: VerifiedCertificate) -> Registration:
    with transaction.atomic():
        existing = _registered_client(claims["iss"], verified)
        if existing is None:
            return _create(claims, verified)
        return _update(existing, claims, verified)


def _registered_client(uri: str, verified: VerifiedCertificate) -> ApiClient | None:
    """The client this software registered before in this community, or that the certificate
    already identifies (the mutual-TLS identity rules); None for a new client."""
    same_software = ApiClient.objects.filter(udap_uri=uri, community=verified.community)
    by_identity = CertificateIdentity.objects.filter(identity_query(verified))
    candidates = {client.pk: client for client in same_software}
    candidates.update({i.client_id: i.client for i in by_identity.select_related("client")})
    if len(candidates) > 1:
        raise OAuthError("unapproved_software_statement", "certificate matches several clients")
    if not candidates:
        return None
    (client,) = candidates.values()
    if client.community_id not in (None, verified.community.pk):
        raise OAuthError("unapproved_software_statement", "client is in another community")
    if client.status != ApiClient.ACTIVE:
        raise OAuthError("unapproved_software_statement", "client suspended")
    return client


def _create(claims: dict[str, Any], verified: VerifiedCertificate) -> Registration:
    from ..keys import issue_key

    scopes = grantable_scopes(claims.get("scope", "").split(), [settings.OAUTH_REGISTRATION_SCOPES])
    try:
        client = clients.create_client(
            claims["client_name"].strip()[:200],
            organization=organization(verified.leaf)[:200],
            community=verified.community,
            allowed_scopes=" ".join(scopes),
            actor=ACTOR,
        )
    except clients.ClientError:
        raise OAuthError("invalid_client_metadata", "client_name already registered") from None
    clients.set_oauth_credentials(
        client,
        secrets.token_urlsafe(24),
        certificate_jwks(verified.leaf),
        claims["iss"],
        actor=ACTOR,
    )
    _add_fingerprint(client, verified)
    _, api_key = issue_key(client, actor=ACTOR)
    return Registration(client, True, " ".join(scopes), api_key)


def _update(
    client: ApiClient, claims: dict[str, Any], verified: VerifiedCertificate
) -> Registration:
    client_id = client.oauth_client_id or secrets.token_urlsafe(24)
    clients.set_oauth_credentials(
        client, client_id, certificate_jwks(verified.leaf), claims["iss"], actor=ACTOR
    )
    _add_fingerprint(client, verified)
    scopes = grantable_scopes(claims.get("scope", "").split(), client.scope_set)
    return Registration(client, False, " ".join(scopes), "")


def _add_fingerprint(client: ApiClient, verified: VerifiedCertificate) -> None:
    pinned = CertificateIdentity.objects.filter(
        kind=CertificateIdentity.FINGERPRINT, value=verified.fingerprint
    )
    if not pinned.exists():
        clients.add_identity(
            client, CertificateIdentity.FINGERPRINT, value=verified.fingerprint, actor=ACTOR
        )


def certificate_jwks(leaf: x509.Certificate) -> str:
    """The certificate's public key as the client's one JWK; its kid is the x5t#S256."""
    public = leaf.public_key()
    kid = x5t_s256(leaf)
    parameters: KeyParameters = {"kid": kid, "use": "sig"}
    key: ECKey | RSAKey
    if isinstance(public, ec.EllipticCurvePublicKey):
        key = ECKey.import_key(public, parameters=parameters)
    else:
        # Any other key is taken as RSA: RSAKey refuses one that is not, as it always has.
        key = RSAKey.import_key(cast(rsa.RSAPublicKey, public), parameters=parameters)
    return json.dumps({"keys": [key.as_dict(private=False)]})


def _x5c_entry(item: Any) -> str:
    """An x5c entry: standard base64 of the DER certificate (RFC 7515 §4.1.6)."""
    if not isinstance(item, str):
        raise ValueError("x5c entries are strings")
    return item
