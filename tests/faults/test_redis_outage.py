"""The request-limit Redis stopped and restarted under a write load against gunicorn workers.

A configured Redis that does not answer fails closed (README, "Limits per client"): 503 with
Retry-After, and nothing written for a refused request. When Redis is back the same workers
answer again within 2 s, without a restart. The Redis is a throw-away one on a free port.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from directory.models import ResourceVersion
from tests.servers import gunicorn, wait_until_serving

from .conftest import REPORTED, WORKERS, assert_no_secret_in_logs
from .fhir import FhirClient
from .load import WriteLoad, check_outage
from .processes import children_of

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CLIENTS = 4
WARM_UP, OUTAGE, AFTER = 1.5, 2.5, 3.0  # seconds


@contextmanager
def limited(env: dict[str, str], redis_url: str, logs: Path):
    """gunicorn counting limits in `redis_url`, limits high enough never to refuse this load."""
    env = env | {
        "RATE_LIMIT_REDIS_URL": redis_url,
        "RATE_LIMIT_PER_MINUTE": "1000000",
        "RATE_LIMIT_BURST": "10000",
        "RATE_LIMIT_CONCURRENT": "100",
    }
    with gunicorn(env, logs, workers=WORKERS) as (url, process):
        wait_until_serving(url, process)
        yield url, process
    assert_no_secret_in_logs(logs)


def test_redis_restart_under_write_load(redis_server, server_env, credentials, tmp_path):
    with limited(server_env, redis_server.url, tmp_path) as (url, process):
        fhir = FhirClient(f"{url}/fhir", credentials.http, timeout=10)
        workers = sorted(children_of(process.pid))
        with WriteLoad(fhir, threads=CLIENTS) as load:
            time.sleep(WARM_UP)
            redis_server.stop()
            time.sleep(OUTAGE)
            redis_server.start()
            back = time.monotonic()
            time.sleep(AFTER)
        assert sorted(children_of(process.pid)) == workers, "recovered without a restart"
    attempts = load.snapshot()
    stored = dict(ResourceVersion.objects.values_list("logical_id", "content"))
    REPORTED.append(("redis restart", check_outage(attempts, back, stored)))
    # Fail closed means before the write: nothing refused was stored.
    refused = {a.name for a in attempts if a.status == 503}
    assert not any(name in content for content in stored.values() for name in refused)
