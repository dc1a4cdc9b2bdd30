"""Custom search parameters across real gunicorn workers: every worker, not just the one that took
the write, refuses the parameter until reindexed and answers it after, within the refresh bound."""

from __future__ import annotations

import time

import pytest
import requests

from tests.customparams_support import ALIAS
from tests.servers import gunicorn, wait_until_serving

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS = 3
REFRESH_SECONDS = 1.0
# Enough requests that each worker answers some (gunicorn's accept is not round-robin).
PROBES = 24


def call(method: str, url: str, **kwargs) -> requests.Response:
    return requests.request(method, url, timeout=30, **kwargs)


def _statuses(base: str, headers: dict) -> set[int]:
    strict = {**headers, "Prefer": "handling=strict"}
    query = {"alias": "harbor"}
    return {
        call("GET", f"{base}/Organization", params=query, headers=strict).status_code
        for _ in range(PROBES)
    }


def test_every_worker_follows_the_parameter(server_env, credentials, tmp_path):
    env = {
        **server_env,
        "SEARCHPARAM_REFRESH_SECONDS": str(REFRESH_SECONDS),
        "GUNICORN_ACCESS_LOG_FORMAT": '%(p)s %(s)s "%(r)s"',  # which worker answered
    }
    headers = {**credentials.http, "Accept": "application/fhir+json"}
    with gunicorn(env, tmp_path, workers=WORKERS) as (url, process):
        wait_until_serving(url, process)
        base = f"{url}/fhir"
        org = {"resourceType": "Organization", "name": "Harbor", "alias": ["Harborside"]}
        assert call("POST", f"{base}/Organization", json=org, headers=headers).status_code == 201
        assert _statuses(base, headers) == {400}  # unknown everywhere (strict handling)

        created = call("POST", f"{base}/SearchParameter", json=ALIAS, headers=headers)
        assert created.status_code == 201, created.text
        time.sleep(REFRESH_SECONDS + 0.5)
        assert _statuses(base, headers) == {409}  # known everywhere, refused until reindexed

        started = call("POST", f"{base}/Organization/$reindex", headers=headers)
        assert started.status_code == 202, started.text
        location = started.headers["Content-Location"].replace("http://127.0.0.1", url)
        status_path = location.split("/fhir/", 1)[1]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = call("GET", f"{base}/{status_path}", headers=headers).json()
            if {"name": "state", "valueCode": "done"} in state["parameter"]:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"reindex did not finish: {state}")
        time.sleep(REFRESH_SECONDS + 0.5)
        assert _statuses(base, headers) == {200}
        found = call("GET", f"{base}/Organization", params={"alias": "h"}, headers=headers)
        assert [e["resource"]["name"] for e in found.json()["entry"]] == ["Harbor"]

    refused_by = {
        line.split()[0]
        for line in (tmp_path / "access.log").read_text().splitlines()
        if " 409 " in line
    }
    # The 409s came from more than the worker that stored the parameter.
    assert len(refused_by) > 1, refused_by
