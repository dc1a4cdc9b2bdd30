"""Security test fixtures: the test PKI, its trust rows in the database, and a live server that
runs the transport-security checks.

Import the header helpers from `tests.security.pki` (`cert_headers`, `http_headers`).
"""

from __future__ import annotations

import pytest
from django.test import override_settings

from tests.servers import reload_live_server_middleware

from .pki import CLIENT_A_DNS, CLIENT_B_DNS
from .trust import register_client, register_community

# The proxy-header prefixes, spelled out here so this test module does not depend on the code.
CERT_HEADER_PREFIXES = (
    "HTTP_X_SSL_CLIENT_",
    "HTTP_SSL_CLIENT_",
    "HTTP_X_FORWARDED_CLIENT_CERT",
    "HTTP_X_FORWARDED_TLS_CLIENT_CERT",
    "HTTP_X_AMZN_MTLS_",
)
HEADERS_MIDDLEWARE = "security.middleware.headers.SecurityHeadersMiddleware"
ECHO_MIDDLEWARE = "tests.security.conftest.ContextEchoMiddleware"
CERT_MIDDLEWARE = [
    "security.middleware.proxy.TrustedProxyMiddleware",
    "security.middleware.client_certificate.ClientCertificateMiddleware",
]


# For live-server tests: flushing only the security tables after each test is several times
# faster than flushing the whole database.
LIVE_DB = pytest.mark.django_db(transaction=True, available_apps=["security"])


class ContextEchoMiddleware:
    """Test only: copies what the checks established into X-Test-* response headers.

    Sits outside the checks so it also sees refusals; lets live-server tests assert the audit
    reason code (context.outcome) and the identified client, not only the HTTP status.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        context = getattr(request, "security", None)
        if context is not None:
            response["X-Test-Outcome"] = context.outcome
            response["X-Test-Trusted-Proxy"] = str(context.from_trusted_proxy)
            response["X-Test-Client"] = context.client.name if context.client else ""
            response["X-Test-Community"] = context.community.slug if context.community else ""
            response["X-Test-Fingerprint"] = context.certificate_fingerprint
            response["X-Test-Subject"] = context.certificate_subject
        # Whether any certificate header was still readable by the checks and the view.
        left = [k for k in request.META if k.startswith(CERT_HEADER_PREFIXES)]
        response["X-Test-Cert-Headers-Left"] = str(len(left))
        return response


@pytest.fixture(autouse=True)
def _fresh_trust_cache():
    """Every test starts from the database, not another test's cached trust store."""
    from security import truststore

    truststore.invalidate()
    yield
    truststore.invalidate()


@pytest.fixture
def trust_community(db, pki):
    """Community A in the database: root + intermediate anchors with fresh CRLs."""
    return register_community(pki.a)


@pytest.fixture
def trust_community_b(db, pki):
    """Community B in the database: root + intermediate anchors with fresh CRLs."""
    return register_community(pki.b)


@pytest.fixture
def cert_client(trust_community):
    """ApiClient "Client A" in community A, recognised by the valid leaf's SAN DNS name."""
    return register_client("Client A", trust_community, dns=CLIENT_A_DNS)


@pytest.fixture
def cert_client_b(trust_community_b):
    """ApiClient "Client B" in community B, recognised by its leaf's SAN DNS name."""
    return register_client("Client B", trust_community_b, dns=CLIENT_B_DNS)


def use_middleware(live_server, settings, middleware: list[str]):
    """Run the live server with `middleware`; returns a callable restoring the original chain.

    The live server builds its chains once per session, so they are rebuilt here and again after.
    """
    original = list(settings.MIDDLEWARE)
    settings.MIDDLEWARE = middleware
    reload_live_server_middleware(live_server)

    def restore():
        with override_settings(MIDDLEWARE=original):
            reload_live_server_middleware(live_server)

    return restore


def secured_middleware(extra_checks: list[str] = (), base: list[str] | None = None) -> list[str]:
    """The default chain with the echo, the proxy and certificate checks (then `extra_checks`)
    right after SecurityHeadersMiddleware."""
    from django.conf import settings

    rest = [
        m for m in (base or settings.MIDDLEWARE) if m not in (HEADERS_MIDDLEWARE, ECHO_MIDDLEWARE)
    ]
    rest = [m for m in rest if m not in CERT_MIDDLEWARE and m not in extra_checks]
    return [HEADERS_MIDDLEWARE, ECHO_MIDDLEWARE, *CERT_MIDDLEWARE, *extra_checks, *rest]


@pytest.fixture
def cert_server(live_server, settings):
    """The live server's base URL, with the proxy and client-certificate checks on, in the
    "test" environment (certificates required), nginx header format, loopback trusted."""
    settings.ENVIRONMENT = "test"
    settings.SECURITY_REQUIRE_CLIENT_CERT = True
    settings.SECURITY_CLIENT_CERT_FORMAT = "nginx"
    settings.SECURITY_TRUSTED_PROXIES = ["127.0.0.1/32", "::1/128"]
    restore = use_middleware(live_server, settings, secured_middleware())
    yield live_server.url
    restore()


@pytest.fixture(autouse=True)
def _checks_enabled_by_each_test(settings):
    """Security unit tests assemble the chain they exercise themselves, from a base without checks.

    The full production chain is exercised by the API and end-to-end tests outside this folder.
    Without the bearer check in the chain no token is ever verified, so the view's scope decision
    would refuse everything; such chains run as a token-less deployment unless a test (through
    `jwt_settings`) requires tokens again.
    """
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m not in settings.SECURITY_MIDDLEWARE]
    settings.SECURITY_REQUIRE_BEARER = False
