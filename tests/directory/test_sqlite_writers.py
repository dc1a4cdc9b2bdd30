"""SQLite, the embedded default, under concurrent writers: they queue, none is refused.

A deferred SQLite transaction that reads and then writes cannot wait for the write lock (SQLite
refuses the upgrade at once with "database is locked"), so two simultaneous writes used to fail
one of them; settings open SQLite transactions IMMEDIATE, which waits on the busy timeout.
Run against a database file in a process of its own (tests/directory/sqlite_writers.py), through
the storage service and through a real gunicorn serving that file.
"""

import json
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.logcapture import ISSUED, SECRET_CHARS
from tests.servers import gunicorn, process_env, wait_until_serving

ROOT = Path(__file__).resolve().parents[2]


def _helper(env: dict[str, str], *args: str) -> str:
    """The last line the helper module printed, run with this interpreter."""
    done = subprocess.run(  # noqa: S603 - a module of the tests, arguments from the tests
        [sys.executable, "-m", "tests.directory.sqlite_writers", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_concurrent_writes_to_a_sqlite_file_queue_instead_of_failing(tmp_path):
    env = process_env(DATABASE_URL=f"sqlite:///{tmp_path / 'writers.sqlite3'}")
    outcome = json.loads(_helper(env))
    # Six updates of one id: each one a version, in order; six creates: all stored.
    assert outcome["updates"] == []
    assert outcome["versions"] == [1, 2, 3, 4, 5, 6]
    assert outcome["creates"] == []


@pytest.mark.e2e
def test_concurrent_puts_to_gunicorn_on_a_sqlite_file_all_succeed(tmp_path):
    """As `make demo` serves: before, 38 of 60 such PUTs were answered 503."""
    base_env = process_env(DATABASE_URL=f"sqlite:///{tmp_path / 'served.sqlite3'}")
    registered = json.loads(_helper(base_env, "--register", str(tmp_path)))
    # The run's log check looks for them too (a key's random part alone, as for the suite's own).
    api_key, token = registered["secrets"]
    ISSUED.update({api_key, api_key[-SECRET_CHARS:], token})
    env = {
        **base_env,
        "ENVIRONMENT": "dev",
        "SECURITY_REQUIRE_CLIENT_CERT": "true",
        "SECURITY_TRUSTED_PROXIES": "127.0.0.1/32",
        "SECURITY_JWT_ISSUERS_FILE": registered["issuers"],
    }
    headers = {**registered["headers"], "Content-Type": "application/fhir+json"}
    with gunicorn(env, tmp_path, workers=2) as (url, process):
        wait_until_serving(url, process)

        def put(number: int) -> int:
            rid = f"race-{number % 3}"
            body = {"resourceType": "Organization", "id": rid, "name": f"Writer {number}"}
            answer = requests.put(
                f"{url}/fhir/Organization/{rid}", json=body, headers=headers, timeout=60
            )
            return answer.status_code

        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = Counter(pool.map(put, range(60)))
        versions = [
            requests.get(f"{url}/fhir/Organization/race-{n}", headers=headers, timeout=10).json()
            for n in range(3)
        ]
    assert statuses == {201: 3, 200: 57}, statuses
    assert [v["meta"]["versionId"] for v in versions] == ["20", "20", "20"]
