"""`make bench` through nginx with mutual TLS: the deployment's own edge in front of each target.

wrk cannot present a client certificate, so a second, client-side nginx does it: wrk speaks
plain HTTP/1.1 to it on loopback, and it keeps a pool of mutual-TLS connections (client
certificate, session reuse, keep-alive) to the edge rendered from deploy/nginx by
`rendernginx`, which verifies the certificate against the community's CAs and CRLs and passes it
to gunicorn as in production. Every target (server, floor, baseline) gets the same pair, so the
cost of the two TLS hops falls on all alike.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

CLIENT_CONF = """\
pid {work}/client.pid;
worker_processes 1;
error_log {work}/client-error.log error;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/temp/client_body;
    proxy_temp_path {work}/temp/proxy;
    fastcgi_temp_path {work}/temp/fastcgi;
    uwsgi_temp_path {work}/temp/uwsgi;
    scgi_temp_path {work}/temp/scgi;
{servers}
}}
"""

# One block per target: plain HTTP in, mutual TLS with keep-alive out to that target's edge.
CLIENT_SERVER = """\
    upstream edge_{name} {{
        server 127.0.0.1:{edge_port};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass https://edge_{name};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host localhost:{edge_port};
            proxy_ssl_protocols TLSv1.2 TLSv1.3;
            proxy_ssl_certificate {client_cert};
            proxy_ssl_certificate_key {client_key};
            proxy_ssl_server_name on;
            proxy_ssl_name localhost;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate {server_ca};
            proxy_ssl_session_reuse on;
            proxy_buffers 32 16k;
        }}
    }}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise SystemExit("--edge nginx needs nginx (e.g. sudo apt-get install nginx)")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(work: Path, pki: Path, upstreams: dict[str, int], django) -> tuple[dict, list]:
    """Edge and client-side nginx for each target's gunicorn port; returns the plain-HTTP ports
    wrk should load (by target name) and the nginx processes to stop afterwards."""
    processes: list = []
    try:
        return _start(work, pki, upstreams, django, processes), processes
    except BaseException:
        stop(processes)
        raise


def _start(work: Path, pki: Path, upstreams: dict[str, int], django, processes: list) -> dict:
    server_dir = _server_certificate(pki, django)
    ports, blocks = {}, []
    for name, upstream in upstreams.items():
        edge_dir, edge_port = work / f"edge-{name}", free_port()
        django(
            "rendernginx", "--out", str(edge_dir), "--port", str(edge_port),
            "--upstream", f"127.0.0.1:{upstream}", "--admin-listen", f"127.0.0.1:{free_port()}",
            "--tls-cert", str(server_dir / "localhost.chain.pem"),
            "--tls-key", str(server_dir / "localhost.key.pem"),
            capture=True,
        )  # fmt: skip
        processes.append(_nginx(edge_dir, edge_dir / "nginx.conf"))
        _wait_listening(edge_port, processes[-1])
        ports[name] = free_port()
        blocks.append(
            CLIENT_SERVER.format(
                name=name,
                edge_port=edge_port,
                port=ports[name],
                client_cert=pki / "client" / "bench-client.localhost.pem",
                client_key=pki / "client" / "bench-client.localhost.key.pem",
                server_ca=pki / "community" / "root" / "ca.pem",
            )
        )
    client_dir = work / "edge-client"
    (client_dir / "temp").mkdir(parents=True, exist_ok=True)
    config = client_dir / "nginx.conf"
    config.write_text(CLIENT_CONF.format(work=client_dir, servers="".join(blocks)))
    processes.append(_nginx(client_dir, config))
    for port in ports.values():
        _wait_listening(port, processes[-1])
    return ports


def stop(processes: list) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        process.wait(timeout=30)


def _server_certificate(pki: Path, django) -> Path:
    """A localhost server certificate from the bench community's intermediate (made once)."""
    out = pki / "server"
    if not (out / "localhost.chain.pem").exists():
        shutil.rmtree(out, ignore_errors=True)
        django(
            "pki_issue_server", "--ca", str(pki / "community" / "intermediate"),
            "--out", str(out), "--dns", "localhost", "--ip", "127.0.0.1", capture=True,
        )  # fmt: skip
    return out


def _nginx(prefix: Path, config: Path) -> subprocess.Popen:
    # In the foreground: stopping the master the benchmark started stops its workers too.
    command = [nginx_binary(), "-p", str(prefix), "-c", str(config), "-g", "daemon off;"]
    return subprocess.Popen(command)  # noqa: S603 - fixed command


def _wait_listening(port: int, process, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"nginx exited; see the logs under var/bench (port {port})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nginx is not listening on port {port}")
