"""The CRL source goes away and comes back, as the certificate check and the operator see it.

While the source is unreachable the stored CRL is used until its nextUpdate; after that the
certificate check fails closed (crl-unavailable, 503 with Retry-After). `refreshcrls` reports
each failed fetch and exits non-zero once a CRL is stale; the trust dashboard shows the state
and the fetch error. Once the source
answers again one `refreshcrls` restores service.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.core.management import CommandError, call_command
from django.utils import timezone

from security.dashboard import anchor_rows
from security.models import TrustAnchor, TrustCommunity
from tests.servers import free_port

from .conftest import LIVE_DB
from .pki import crl_der, http_headers, make_crl

LIFETIME = dt.timedelta(seconds=6)  # of the CRL the source publishes: long enough to use it


class CrlSource:
    """A loopback HTTP server publishing one CRL, which can be stopped and restarted."""

    def __init__(self):
        self.port, self.body, self._server = free_port(), b"", None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/issuing.crl"

    def start(self) -> None:
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.end_headers()
                self.wfile.write(source.body)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def crl_source():
    source = CrlSource()
    yield source
    source.stop()


def fresh_crl(pki):
    """The issuing CA's CRL from now until LIFETIME from now (CRL times are whole seconds)."""
    now = timezone.now().replace(microsecond=0)
    return make_crl(pki.a.intermediate, this_update=now, next_update=now + LIFETIME)


def intermediate_row() -> dict:
    (row,) = [r for r in anchor_rows(timezone.now()) if r["anchor"].kind == "intermediate"]
    return row


@LIVE_DB
def test_unreachable_crl_source(cert_server, cert_client, pki, crl_source):
    community = TrustCommunity.objects.get(slug="community-a")
    TrustAnchor.objects.filter(community=community, kind="intermediate").update(
        crl_source=crl_source.url
    )

    def ask():
        url = cert_server + "/fhir/metadata"
        return requests.get(url, headers=http_headers(pki.valid), timeout=10)

    published = fresh_crl(pki)
    crl_source.body = crl_der(published)
    crl_source.start()
    call_command("refreshcrls")
    crl_source.stop()

    # Source gone, stored CRL still current: the failed fetch is reported (exit status stays 0
    # while no CRL is stale, as documented) and certificates are still checked against it.
    errors = io.StringIO()
    call_command("refreshcrls", stderr=errors)
    assert "Issuing CA" in errors.getvalue() and "cannot fetch" in errors.getvalue()
    assert intermediate_row()["crl_state"] == "fresh"
    assert "cannot fetch" in intermediate_row()["last_error"]
    assert ask().headers["X-Test-Client"] == "Client A"

    # Past nextUpdate: fail closed, and the dashboard says why.
    time.sleep(max(0.0, (published.next_update_utc - timezone.now()).total_seconds()) + 0.1)
    refused = ask()
    assert refused.status_code == 503
    assert refused.headers["X-Test-Outcome"] == "crl-unavailable"
    assert refused.headers["Retry-After"].isdigit()
    assert refused.json()["issue"][0]["code"] == "transient"
    assert intermediate_row()["crl_state"] == "stale"
    with pytest.raises(CommandError, match="community-a"):
        call_command("refreshcrls")

    # The source returns with a newer CRL: one refresh restores service.
    crl_source.body = crl_der(fresh_crl(pki))
    crl_source.start()
    call_command("refreshcrls")
    assert intermediate_row()["crl_state"] == "fresh"
    assert intermediate_row()["last_error"] == ""
    accepted = ask()
    assert accepted.status_code == 200
    assert accepted.headers["X-Test-Client"] == "Client A"
