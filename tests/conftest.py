"""Shared fixtures. Tests run against the database named by DATABASE_URL (see README).

Every API test goes through the full security chain with real credentials: a certificate from
the test PKI as the TLS terminator would pass it, the client's API key and a signed bearer token.
"""

import logging
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from tests import logcapture
from tests.browser_support import chromium, csp_violations
from tests.credentials import make_token_issuer, register_client, register_directory_client
from tests.security.pki import CLIENT_B_DNS, PKI, build_pki
from tests.security.trust import register_community
from tests.servers import reload_live_server_middleware

FHIR_JSON = "application/fhir+json"
E2E = Path(__file__).parent / "e2e"
# A quick hasher for the browser tests' sign-ins; PBKDF2 at full strength would be most of it.
FAST_HASHER = "django.contrib.auth.hashers.MD5PasswordHasher"


def pytest_collection_modifyitems(config, items):
    """`-m browser` and `-m e2e` select by marker: a test needing Chromium, or under tests/e2e,
    that lacks its marker (a module's pytestmark) is an error, not a test `-m` misses."""
    unmarked = [
        item.nodeid
        for item in items
        if ("browser" in item.fixturenames and not item.get_closest_marker("browser"))
        or (E2E in item.path.parents and not item.get_closest_marker("e2e"))
    ]
    if unmarked:
        raise pytest.UsageError(f"add the browser or e2e marker to: {', '.join(unmarked)}")


@pytest.fixture(scope="session", autouse=True)
def _no_secret_in_the_run_log(tmp_path_factory):
    """Fails the run if any key or token issued during it appears, in any form a client could
    send it, in any log record, captured stream or log file of the run (tests/logcapture.py)."""
    from security import keys

    logcapture.remember_issued_keys(keys)
    handler = logcapture.RunLog()
    logging.getLogger().addHandler(handler)
    yield
    logging.getLogger().removeHandler(handler)
    places = {
        "log records": handler.lines,
        "log files": list(logcapture.log_files(tmp_path_factory.getbasetemp())),
        **logcapture.KEPT,
    }
    found = {where: logcapture.leaked(texts) for where, texts in places.items()}
    assert not any(found.values()), f"secrets in this test run's output: {found}"


def pytest_runtest_logreport(report):
    """Each test's captured stdout, stderr and log go to the final secrets sweep."""
    logcapture.keep("captured streams", (content for _, content in report.sections))


@pytest.fixture(autouse=True)
def _loopback_stands_in_for_the_proxy(settings):
    """Django's test client and the live test servers see 127.0.0.1 where nginx would connect.

    Deployments trust only their terminator (a unix socket by default; production refuses
    loopback); tests of that policy set SECURITY_TRUSTED_PROXIES themselves.
    """
    settings.SECURITY_TRUSTED_PROXIES = ["127.0.0.1/32", "::1/128"]


@pytest.fixture(scope="session")
def pki() -> PKI:
    """The test PKI (communities A and B, leaves, CRLs), generated once per session."""
    return build_pki()


@pytest.fixture(scope="session")
def token_issuer(tmp_path_factory):
    return make_token_issuer(tmp_path_factory.mktemp("token-issuer"))


@pytest.fixture(autouse=True)
def _fresh_security_caches():
    """Per-process caches of trust, keys and issuers must not carry rows across tests."""
    from security import certclients, keys, tokens, truststore

    # certclients too: a test database flush sends no signals, so a certificate remembered for a
    # client of an earlier test (other allowed scopes) would otherwise answer for the next one.
    caches = (truststore.invalidate, keys.clear_cache, tokens.clear_issuer_cache, certclients.clear)
    for clear in caches:
        clear()
    yield
    for clear in caches:
        clear()


@pytest.fixture(autouse=True)
def _live_server_follows_settings(request):
    """pytest-django's live server is session-wide and builds its middleware once: a test that
    rebuilt it for a chain of its own (the security tests do) must not hand that chain to the
    next test using the server, so each one starts with the chain its settings name."""
    if "live_server" in request.fixturenames:
        reload_live_server_middleware(request.getfixturevalue("live_server"))


@pytest.fixture(autouse=True)
def _fresh_request_limits():
    """In-process rate and in-flight state must not carry one test's requests into the next."""
    from fhirapi import limitstore

    limitstore.reset()
    yield
    limitstore.reset()


@pytest.fixture
def credentials(db, settings, pki, token_issuer):
    """A registered client of community A with its certificate, API key and token."""
    settings.SECURITY_JWT_ISSUERS_FILE = token_issuer.issuers_file
    community = register_community(pki.a)
    return register_directory_client(pki, token_issuer, community)


@pytest.fixture
def other_credentials(credentials, pki, token_issuer):
    """A second registered client, of community B, with its own certificate, key and token."""
    community = register_community(pki.b)
    return register_client(token_issuer, community, pki.valid_b, CLIENT_B_DNS, "Other client")


@pytest.fixture
def api(credentials):
    """A FHIR API client speaking application/fhir+json with a registered client's credentials."""
    client = APIClient()
    client.credentials(HTTP_ACCEPT=FHIR_JSON, **credentials.meta)
    return client


@pytest.fixture
def anonymous_api(db):
    """A client with no credentials at all, as an attacker or a misconfigured system would be."""
    client = APIClient()
    client.credentials(HTTP_ACCEPT=FHIR_JSON)
    return client


@pytest.fixture
def fresh_custom_params(settings):
    """Only the built-in search parameters, before and after the test; every request checks the
    custom parameters' generation (no refresh interval)."""
    from directory import customparams

    settings.SEARCHPARAM_REFRESH_SECONDS = 0
    customparams.reset()
    yield
    customparams.reset()


# ---- Headless Chromium (tests/browser_support.py) ----------------------------------------------


@pytest.fixture(scope="module")
def browser():
    # Module scope, not session: while Playwright runs, its event loop is live in this thread,
    # and the tests after the module must get Django's usual async-safety checks back.
    with chromium() as running:
        yield running


@pytest.fixture
def browser_context_options() -> dict:
    """Options for each test's browser context; a module overrides this (clipboard access)."""
    return {}


@pytest.fixture
def page(browser, live_server, settings, browser_context_options):
    """A page on the live server, its console errors in `page.console_errors`; a Content
    Security Policy refusal fails the test (a test provoking one clears the list)."""
    # Sign-in by password only; TOTP has its own tests (tests/security/test_login.py).
    settings.ADMIN_REQUIRE_OTP = False
    settings.PASSWORD_HASHERS = [FAST_HASHER, *settings.PASSWORD_HASHERS]
    context = browser.new_context(base_url=live_server.url, **browser_context_options)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.console_errors = []
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    yield page
    context.close()
    assert csp_violations(page) == []
