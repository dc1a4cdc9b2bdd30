"""A real nginx with deploy/nginx/ in front of the app, for end-to-end tests over mutual TLS.

The templates are rendered the way an operator would, by filling in their placeholders; nothing
else in them changes. nginx runs in the foreground without a master so that the test owns one
process and every path (pid, logs, temporary files) lives in the test's own directory.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.logcapture import log_files
from tests.security.pki import PKI, Issued, crl_pem, make_localhost_server
from tests.servers import ROOT, free_port

TEMPLATES = ROOT / "deploy" / "nginx"
PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")


def require_nginx() -> str:
    """The nginx binary; skip without it locally, fail without it in CI."""
    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if binary:
        return binary
    reason = "nginx is not installed (apt-get install nginx)"
    if os.environ.get("CI"):
        pytest.fail(reason + "; CI must run the nginx tests, not skip them")
    pytest.skip(reason)


def render(template: Path, values: dict[str, str]) -> str:
    text = template.read_text()
    missing = set(PLACEHOLDER.findall(text)) - values.keys()
    assert not missing, f"{template.name}: no value for {sorted(missing)}"
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


# ---- PKI material as files ----------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    server_chain: Path  # localhost leaf + community A intermediate
    server_key: Path
    server_ca: Path  # what clients verify the server against
    client_cas: Path  # every community's root and intermediate
    crls: Path  # a fresh CRL of each of those CAs


def _write_private(path: Path, data: bytes) -> Path:
    # Created 0600 from the start: a key is never readable by others, not even briefly.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    return path


def _key_pem(issued: Issued) -> bytes:
    return issued.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_tls_files(pki: PKI, directory: Path) -> TlsFiles:
    server = make_localhost_server(pki.a.intermediate)
    communities = (pki.a, pki.b)
    files = TlsFiles(
        server_chain=directory / "server-chain.pem",
        server_key=directory / "server-key.pem",
        server_ca=directory / "server-ca.pem",
        client_cas=directory / "client-cas.pem",
        crls=directory / "crls.pem",
    )
    files.server_chain.write_text(server.pem + pki.a.intermediate.pem)
    _write_private(files.server_key, _key_pem(server))
    files.server_ca.write_text(pki.a.root.pem)
    files.client_cas.write_text("".join(c.root.pem + c.intermediate.pem for c in communities))
    crls = [crl_pem(crl) for c in communities for crl in (c.root_crl, c.intermediate_crl)]
    files.crls.write_bytes(b"".join(crls))
    return files


def write_client(issued: Issued, directory: Path, name: str) -> tuple[str, str]:
    """(certificate file, unencrypted key file) as `requests` takes them in `cert=`."""
    cert = directory / f"{name}.pem"
    cert.write_text(issued.pem)
    key = _write_private(directory / f"{name}-key.pem", _key_pem(issued))
    return str(cert), str(key)


# ---- nginx -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    url: str  # https://localhost:<port>
    port: int
    logs: Path
    static: Path
    admin_url: str = ""  # https://localhost:<admin port>, the admin server without client certs


def _site_values(tls: TlsFiles, upstream: str, ports: tuple[int, int], directory: Path) -> dict:
    return {
        "LISTEN_PORT": str(ports[0]),
        "ADMIN_LISTEN": f"127.0.0.1:{ports[1]}",
        "SERVER_NAME": "localhost",
        "UPSTREAM": upstream,
        "TLS_CERT": str(tls.server_chain),
        "TLS_KEY": str(tls.server_key),
        "CLIENT_CA_BUNDLE": str(tls.client_cas),
        "CRL_BUNDLE": str(tls.crls),
        "LOG_DIR": str(directory / "logs"),
        "STATIC_ROOT": str(directory / "static"),
    }


def _write_config(
    tls: TlsFiles,
    upstream: str,
    ports: tuple[int, int],
    directory: Path,
    edit: Callable[[str], str],
) -> Path:
    for sub in ("logs", "temp", "static"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    values = _site_values(tls, upstream, ports, directory)
    site = directory / "fhir-directory.conf"
    site.write_text(edit(render(TEMPLATES / "fhir-directory.conf", values)))
    admin = directory / "fhir-directory-admin.conf"
    admin.write_text(render(TEMPLATES / "fhir-directory-admin.conf", values))
    main = directory / "nginx.conf"
    values = {
        "PID_FILE": str(directory / "nginx.pid"),
        "LOG_DIR": str(directory / "logs"),
        "TEMP_DIR": str(directory / "temp"),
        "SITE_CONF": str(site),
        "ADMIN_SITE_CONF": str(admin),
    }
    main.write_text(render(TEMPLATES / "nginx.conf", values))
    return main


@contextmanager
def nginx(tls: TlsFiles, upstream: str, directory: Path, edit: Callable[[str], str] = str):
    """nginx on free loopback ports (API, admin) proxying to `upstream` (host:port or unix:path);
    `edit` may change the rendered API site."""
    binary = require_nginx()
    port, admin_port = free_port(), free_port()
    while admin_port == port:
        admin_port = free_port()
    config = _write_config(tls, upstream, (port, admin_port), directory, edit)
    command = [
        binary,
        "-p",
        str(directory),
        "-c",
        str(config),
        "-g",
        "daemon off; master_process off;",
    ]
    with (directory / "logs" / "nginx-stderr.log").open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=output)  # noqa: S603 - test only
        try:
            _wait_until_listening(port, process, directory)
            _wait_until_listening(admin_port, process, directory)
            yield Edge(
                f"https://localhost:{port}",
                port,
                directory / "logs",
                directory / "static",
                admin_url=f"https://localhost:{admin_port}",
            )
        finally:
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=30)


def _wait_until_listening(port: int, process, directory: Path, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            startup = (directory / "logs" / "nginx-stderr.log").read_text(errors="replace")
            raise AssertionError(f"nginx exited: {startup}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("nginx did not start listening")


def logs_text(*directories: Path) -> str:
    """Everything every process wrote to its logs under `directories`."""
    texts = [text for directory in directories for text in log_files(directory)]
    assert texts, "no log files found"
    return "\n".join(texts)


# ---- Raw TLS handshakes ------------------------------------------------------------------------


def handshake(
    port: int,
    server_ca: Path,
    *,
    minimum: ssl.TLSVersion | None = None,
    maximum: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
) -> tuple[str, str]:
    """(protocol, cipher) negotiated with the server, or ssl.SSLError if it refuses."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(server_ca)
    if minimum:
        context.minimum_version = minimum
    if maximum:
        context.maximum_version = maximum
    if ciphers:
        context.set_ciphers(ciphers)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.version(), tls.cipher()[0]
