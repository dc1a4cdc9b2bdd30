"""A real multi-worker gunicorn on the test database, and a FHIR client for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import production  # noqa: F401 - the PROD server's environment
from tests.logcapture import leaked
from tests.servers import all_logs, gunicorn, process_env, wait_until_serving

from .fhir import FhirClient
from .redis_server import RedisServer, require_redis_server

WORKERS = 4
# (title, text) of the figures the load and fault tests measured, for the terminal summary.
REPORTED: list[tuple[str, str]] = []


@pytest.fixture
def server_env(credentials, token_issuer) -> dict[str, str]:
    """The environment of a test-mode server that re-reads keys and trust on every request."""
    return process_env(
        ENVIRONMENT="test",
        # The test speaks for the TLS terminator over loopback (test mode allows that address).
        SECURITY_TRUSTED_PROXIES="127.0.0.1/32",
        SECURITY_JWT_ISSUERS_FILE=token_issuer.issuers_file,
        SECURITY_CACHE_SECONDS="0",
        # One test client stands for many clients here; the limits are tested on their own.
        RATE_LIMIT_PER_MINUTE="0",
        RATE_LIMIT_CONCURRENT="0",
    )


@pytest.fixture
def served(server_env, credentials, tmp_path):
    """(client, gunicorn master process) of a server with WORKERS workers, as the test client."""
    with gunicorn(server_env, tmp_path, workers=WORKERS) as (url, process):
        wait_until_serving(url, process)
        yield FhirClient(f"{url}/fhir", credentials.http), process
    assert_no_secret_in_logs(tmp_path)


def assert_no_secret_in_logs(logs: Path) -> None:
    """No key or token issued in this run appears in the server's logs, errors and outages too."""
    assert leaked([all_logs(logs)]) == []


@pytest.fixture
def fhir(served) -> FhirClient:
    return served[0]


@pytest.fixture
def redis_server(tmp_path_factory) -> RedisServer:
    """A throw-away Redis for the request limits, as production counts them across workers."""
    require_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


def pytest_terminal_summary(terminalreporter) -> None:
    """The load and fault figures at the end of the run, where CI logs keep them."""
    if REPORTED:
        terminalreporter.section("load and fault figures")
        for title, text in REPORTED:
            terminalreporter.write_line(f"{title}:\n{text}")
