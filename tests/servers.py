"""Real server processes for tests: gunicorn with our config on a free loopback port, or on a
unix socket as deployed behind nginx (SECURITY_TRUSTED_PROXIES=unix)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
import requests_unixsocket
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    """The URL of the database the tests use (the test database once set up)."""
    db = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.skip("the subprocess shares the test database only on PostgreSQL")
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def process_env(**overrides: str) -> dict[str, str]:
    """The test process's environment without its SECURITY_* settings, on the test database
    unless `overrides` names another DATABASE_URL."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SECURITY_")}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    if "DATABASE_URL" not in overrides:
        env["DATABASE_URL"] = database_url()
    env.update(overrides)
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http() -> requests.Session:
    """A requests session that also speaks to unix-socket URLs (http+unix://<quoted path>)."""
    return requests_unixsocket.Session()


@contextmanager
def unix_socket():
    """A socket path in a private directory: 0700 as a deployment's, and short enough for the
    108-byte limit on socket paths that pytest's own temporary paths can exceed."""
    directory = tempfile.mkdtemp(prefix="fd-sock-")
    try:
        yield Path(directory) / "gunicorn.sock"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def gunicorn(
    env: dict[str, str], logs: Path, bind: str = "", workers: int = 1, port: int | None = None
):
    """A real gunicorn with deploy/gunicorn.conf.py on a loopback port, or on `bind`
    (unix:<path>); yields (url, process), the url for `http()` when on a unix socket."""
    if bind.startswith("unix:"):
        url = f"http+unix://{quote(bind.removeprefix('unix:'), safe='')}"
    else:
        port = port or free_port()
        bind, url = f"127.0.0.1:{port}", f"http://127.0.0.1:{port}"
    env = {
        **env,
        "GUNICORN_BIND": bind,
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_ACCESS_LOG": str(logs / "access.log"),
        "GUNICORN_ERROR_LOG": str(logs / "error.log"),
    }
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "config.wsgi",
        "--config",
        "deploy/gunicorn.conf.py",
        "--log-level",
        "debug",
    ]
    with (logs / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603 - fixed command, test only
            command, cwd=ROOT, env=env, stdout=stderr, stderr=stderr
        )
        try:
            yield url, process
        finally:
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=30)


def wait_until_serving(url: str, process, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "gunicorn exited"
        try:
            http().get(f"{url}/healthz", timeout=5)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    raise AssertionError("gunicorn did not start serving")


def all_logs(logs: Path) -> str:
    return "\n".join(path.read_text(errors="replace") for path in sorted(logs.glob("*.log")))


def reload_live_server_middleware(live_server) -> None:
    """Rebuild every chain of pytest-django's live server from settings.MIDDLEWARE.

    The live server is session-wide and builds its chains once; its media-files wrapper
    (MEDIA_URL is empty, so it claims every path) runs its own chain, not only the innermost.
    """
    from django.core.handlers.wsgi import WSGIHandler

    handler = live_server.thread.httpd.get_app()
    while handler is not None:
        if isinstance(handler, WSGIHandler):
            handler.load_middleware()
        handler = getattr(handler, "application", None)
