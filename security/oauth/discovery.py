"""Discovery documents: SMART configuration and UDAP metadata (signed with the server's
certificate, as UDAP requires, so a client can check it against its trust community)."""

from __future__ import annotations

import base64
import secrets
import time
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from ..trust.certificates import der, load_pem_certificates
from . import config

SCOPES_SUPPORTED = ["system/*.rs", "system/*.cruds", "system/*.read", "system/*.write"]
SIGNED_METADATA_SECONDS = 3600
EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384"}


def smart_configuration() -> dict:
    return {
        "issuer": config.issuer(),
        "jwks_uri": config.jwks_uri(),
        "token_endpoint": config.token_endpoint(),
        "registration_endpoint": config.registration_endpoint(),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(config.CLIENT_ALGORITHMS),
        "grant_types_supported": [config.CLIENT_CREDENTIALS],
        "scopes_supported": SCOPES_SUPPORTED,
        "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
    }


def udap_configured() -> bool:
    return bool(settings.OAUTH_UDAP_CERTIFICATE_FILE and settings.OAUTH_UDAP_KEY_FILE)


def udap_metadata() -> dict:
    """UDAP discovery (UDAP Security IG §2); requires the server certificate and key settings."""
    return {
        "udap_versions_supported": ["1"],
        "udap_profiles_supported": ["udap_dcr", "udap_authn"],
        "udap_authorization_extensions_supported": [],
        "udap_authorization_extensions_required": [],
        "udap_certifications_supported": [],
        "udap_certifications_required": [],
        "grant_types_supported": [config.CLIENT_CREDENTIALS],
        "scopes_supported": SCOPES_SUPPORTED,
        "token_endpoint": config.token_endpoint(),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(config.CLIENT_ALGORITHMS),
        "registration_endpoint": config.registration_endpoint(),
        "registration_endpoint_jwt_signing_alg_values_supported": list(config.CLIENT_ALGORITHMS),
        "signed_metadata": signed_metadata(),
    }


def signed_metadata() -> str:
    chain, key, algorithm = _server_credentials(
        settings.OAUTH_UDAP_CERTIFICATE_FILE, settings.OAUTH_UDAP_KEY_FILE
    )
    now = int(time.time())
    claims = {
        "iss": config.audience(),
        "sub": config.audience(),
        "iat": now,
        "exp": now + SIGNED_METADATA_SECONDS,
        "jti": secrets.token_urlsafe(16),
        "token_endpoint": config.token_endpoint(),
        "registration_endpoint": config.registration_endpoint(),
    }
    x5c = [base64.b64encode(der(c)).decode() for c in chain]
    return jwt.encode({"alg": algorithm, "x5c": x5c}, claims, key)


@lru_cache(maxsize=2)
def _server_credentials(
    cert_file: str, key_file: str
) -> tuple[list[x509.Certificate], ECKey | RSAKey, str]:
    """(certificate chain, joserfc key, algorithm), read once per process and file pair."""
    chain = load_pem_certificates(Path(cert_file).read_bytes())
    private = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        algorithm = EC_ALGORITHMS.get(private.curve.name)
        if algorithm:
            return chain, ECKey.import_key(private), algorithm
    if isinstance(private, rsa.RSAPrivateKey):
        return chain, RSAKey.import_key(private), "RS256"
    raise ValueError("OAUTH_UDAP_KEY_FILE must hold an RSA, EC P-256 or EC P-384 key")
