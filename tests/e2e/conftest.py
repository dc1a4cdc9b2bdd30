"""End-to-end fixtures: the environment of a production-mode server process."""

import pytest

from tests.servers import process_env

PRODUCTION_SECRET = "e2e-" + "k" * 60
PRODUCTION_PEPPER = "e2e-" + "p" * 60


@pytest.fixture
def production(settings, token_issuer):
    """Settings shared by this test process and the PROD server, so keys hash the same way."""
    settings.SECURITY_API_KEY_PEPPER = PRODUCTION_PEPPER
    return process_env(
        ENVIRONMENT="prod",
        DEBUG="false",
        SECRET_KEY=PRODUCTION_SECRET,
        SECURITY_API_KEY_PEPPER=PRODUCTION_PEPPER,
        # gunicorn on a unix socket that only the test (as nginx) opens; production refuses a
        # trusted loopback address (security.E010).
        SECURITY_TRUSTED_PROXIES="unix",
        SECURITY_JWT_ISSUERS_FILE=token_issuer.issuers_file,
        SECURITY_CACHE_SECONDS="0",
        ALLOWED_HOSTS="localhost,127.0.0.1",
    )
