"""Where the authorization server lives and the limits it applies, all from settings."""

from __future__ import annotations

from django.conf import settings

# SMART Backend Services: the algorithms a client may sign its assertion with.
CLIENT_ALGORITHMS = ("RS256", "ES256", "RS384", "ES384")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_CREDENTIALS = "client_credentials"
AUTH_METHOD = "private_key_jwt"
# An assertion (and a software statement) may be valid for at most this long.
MAX_ASSERTION_SECONDS = 300
MAX_ACCESS_TOKEN_SECONDS = 300
TOKEN_ALGORITHM = "ES256"  # noqa: S105 - an algorithm name, not a secret


def enabled() -> bool:
    return bool(settings.OAUTH_SERVER_URL)


def server_url() -> str:
    return settings.OAUTH_SERVER_URL.rstrip("/")


def issuer() -> str:
    return f"{server_url()}/oauth"


def token_endpoint() -> str:
    return f"{issuer()}/token"


def registration_endpoint() -> str:
    return f"{issuer()}/register"


def jwks_uri() -> str:
    return f"{issuer()}/jwks"


def audience() -> str:
    """The `aud` of the access tokens: the FHIR base this server serves."""
    return f"{server_url()}/fhir"


def access_token_lifetime() -> int:
    return max(1, min(settings.OAUTH_ACCESS_TOKEN_LIFETIME, MAX_ACCESS_TOKEN_SECONDS))
