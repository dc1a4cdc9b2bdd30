"""Every refusal is a FHIR OperationOutcome marked no-store, whichever server makes it.

Malformed requests go out byte for byte over raw sockets (an HTTP client library would fix or
refuse them first): a NUL or a climb above / in the path, an overlong request line or header,
TRACE, too many header fields, an unknown Host. nginx refuses what it can parse least; gunicorn,
reached directly, refuses the rest; Django refuses an unknown Host.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from dataclasses import dataclass

import pytest

from tests.e2e.nginx_support import nginx, require_nginx, write_client, write_tls_files
from tests.servers import free_port, gunicorn, process_env, unix_socket, wait_until_serving

pytestmark = pytest.mark.e2e

JSON = "application/fhir+json"
LONG = "x" * 9 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def exchange(sock: socket.socket, request: bytes) -> Answer:
    sock.sendall(request)
    response = http.client.HTTPResponse(sock)
    response.begin()
    return Answer(response.status, response.headers, response.read())


def request_bytes(line: str, *headers: str, host: str = "localhost") -> bytes:
    lines = [line, f"Host: {host}", *headers, "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


def assert_outcome(answer: Answer, status: int, code: str | None = None) -> dict:
    assert answer.status == status, answer.body[:300]
    assert answer.headers["Content-Type"].split(";")[0] == JSON
    assert answer.headers["Cache-Control"] == "no-store"
    outcome = json.loads(answer.body)
    assert outcome["resourceType"] == "OperationOutcome"
    if code:
        assert outcome["issue"][0]["code"] == code
    return outcome


# The cases nginx refuses on its own, as the test of issue 8 sent them: (request, status, code).
EDGE_REFUSALS = {
    "nul in a resource id": (request_bytes("GET /fhir/Organization/org%00 HTTP/1.1"), 400),
    "nul alone": (request_bytes("GET /%00 HTTP/1.1"), 400),
    "encoded climb": (request_bytes("GET /fhir/..%2f..%2f..%2fetc%2fpasswd HTTP/1.1"), 400),
    "path as is": (request_bytes("GET /../../etc/passwd HTTP/1.1"), 400),
    "9 KB request line": (request_bytes(f"GET /fhir/Organization?name={LONG} HTTP/1.1"), 414),
    "9 KB header": (request_bytes("GET /fhir/metadata HTTP/1.1", f"X-Long: {LONG}"), 400),
    "TRACE": (request_bytes("TRACE /fhir/metadata HTTP/1.1"), 405),
    "HTTP/2.0 request line": (request_bytes("GET /fhir/metadata HTTP/2.0"), 505),
    "refusal page itself": (request_bytes("GET /_refusal/bad-request HTTP/1.1"), 404),
    "bare garbage": (b"\x16\x03garbage\r\n\r\n", 400),
}


@pytest.fixture(scope="module")
def tls(pki, tmp_path_factory):
    require_nginx()
    return write_tls_files(pki, tmp_path_factory.mktemp("refusal-tls"))


@pytest.fixture(scope="module")
def client_cert(pki, tmp_path_factory):
    return write_client(pki.valid, tmp_path_factory.mktemp("refusal-client"), "valid")


def tls_exchange(port: int, tls, client_cert, request: bytes) -> Answer:
    context = ssl.create_default_context(cafile=str(tls.server_ca))
    context.load_cert_chain(*client_cert)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        return exchange(sock, request)


@pytest.fixture(scope="module")
def edge_alone(tls, tmp_path_factory):
    """nginx whose upstream nobody listens on: every answer here is nginx's own."""
    with nginx(tls, f"127.0.0.1:{free_port()}", tmp_path_factory.mktemp("refusal-nginx")) as edge:
        yield edge


@pytest.mark.parametrize("case", EDGE_REFUSALS)
def test_nginx_refusals_are_outcomes(edge_alone, tls, client_cert, case):
    request, status = EDGE_REFUSALS[case]
    answer = tls_exchange(edge_alone.port, tls, client_cert, request)
    assert_outcome(answer, status)
    assert b"<html" not in answer.body


def test_nginx_refusals_without_a_client_certificate_are_outcomes(edge_alone, tls):
    context = ssl.create_default_context(cafile=str(tls.server_ca))
    request, _ = EDGE_REFUSALS["nul alone"]
    with (
        socket.create_connection(("127.0.0.1", edge_alone.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        # The path is read before the certificate is checked; either refusal is an outcome.
        assert_outcome(exchange(sock, request), 400)


# ---- gunicorn reached directly, and through nginx ----------------------------------------------

TOO_MANY_HEADERS = [f"X-Field-{number}: {number}" for number in range(120)]


@pytest.fixture
def app(production, credentials, tmp_path, request):
    """A PROD gunicorn with deploy/gunicorn.conf.py on a unix socket, the only peer PROD trusts
    to pass certificates; yields the socket's path. Its worker class is the configured default
    (threaded) unless the test names one (indirect parameter)."""
    logs = tmp_path / "gunicorn"
    logs.mkdir()
    worker = getattr(request, "param", None)
    env = {**production, "GUNICORN_WORKER_CLASS": worker} if worker else production
    with unix_socket() as sock, gunicorn(env, logs, f"unix:{sock}") as (url, process):
        wait_until_serving(url, process)
        yield str(sock)


def plain_exchange(address: int | str, request: bytes) -> Answer:
    """One raw exchange with a loopback port or a unix socket path."""
    if isinstance(address, str):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(address)
            return exchange(sock, request)
    with socket.create_connection(("127.0.0.1", address), timeout=10) as sock:
        return exchange(sock, request)


GUNICORN_REFUSALS = {
    "120 header fields": (request_bytes("GET /fhir/metadata HTTP/1.1", *TOO_MANY_HEADERS), 431),
    "9 KB request line": (request_bytes(f"GET /fhir/metadata?name={LONG} HTTP/1.1"), 414),
    "9 KB header": (request_bytes("GET /fhir/metadata HTTP/1.1", f"X-Long: {LONG}"), 431),
    "bad request line": (b"GARBAGE\r\n\r\n", 400),
    "bad header name": (request_bytes("GET /fhir/metadata HTTP/1.1", "Bad Name: 1"), 400),
    "unknown transfer coding": (
        request_bytes("POST /fhir/Organization HTTP/1.1", "Transfer-Encoding: bogus"),
        501,
    ),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("app", ["gthread", "sync"], indirect=True)
@pytest.mark.parametrize("case", GUNICORN_REFUSALS)
def test_gunicorn_refusals_are_outcomes(app, case):
    request, status = GUNICORN_REFUSALS[case]
    answer = plain_exchange(app, request)
    assert_outcome(answer, status)
    assert answer.headers["Connection"] == "close"  # after a refusal nothing more is read


@pytest.mark.django_db(transaction=True)
def test_the_threaded_worker_keeps_the_connection_alive_until_a_refusal(app):
    keep = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(app)
        for _ in range(3):  # one connection, several answers: nginx's upstream keep-alive
            answer = exchange(sock, keep)
            assert answer.status == 200 and answer.headers.get("Connection") != "close"
        refused = exchange(sock, request_bytes("GET /fhir/metadata HTTP/1.1", "Bad Name: 1"))
        assert_outcome(refused, 400)
        assert refused.headers["Connection"] == "close"
        assert sock.recv(1) == b""  # closed by the server


@pytest.mark.django_db(transaction=True)
def test_unknown_host_is_an_outcome_from_django(tmp_path):
    # dev: no certificate needed to reach the host check over a plain socket.
    with gunicorn(process_env(ENVIRONMENT="dev"), tmp_path) as (url, process):
        wait_until_serving(url, process)
        port = int(url.rsplit(":", 1)[1])
        answer = plain_exchange(
            port, request_bytes("GET /fhir/metadata HTTP/1.1", host="x.example")
        )
    assert_outcome(answer, 400, "security")


@pytest.mark.django_db(transaction=True)
def test_refusals_past_nginx_are_outcomes(app, tls, client_cert, tmp_path):
    with nginx(tls, f"unix:{app}", tmp_path / "nginx") as edge:
        many = request_bytes("GET /fhir/metadata HTTP/1.1", *TOO_MANY_HEADERS)
        assert_outcome(tls_exchange(edge.port, tls, client_cert, many), 431)
        unknown = request_bytes("GET /fhir/metadata HTTP/1.1", host="evil.example")
        assert_outcome(tls_exchange(edge.port, tls, client_cert, unknown), 400, "security")
        line = request_bytes(f"GET /fhir/metadata?name={'x' * 8000} HTTP/1.1")
        # The longest line nginx passes on is within gunicorn's limit: the app answers.
        assert tls_exchange(edge.port, tls, client_cert, line).status == 200
