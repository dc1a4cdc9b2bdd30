"""Concurrent writes through a real multi-worker gunicorn on PostgreSQL: none is lost or doubled.

Every trial starts its requests together (a barrier), so the workers race for the same row.
FAULT_TEST_TRIALS sets how many times the If-Match race is repeated (CI keeps it modest).
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest

from directory.models import ResourceVersion, TokenIndex

from .conftest import REPORTED
from .fhir import IDENTIFIER_SYSTEM, id_of, marker, organization, version_of

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RACERS = 50
TRIALS = int(os.environ.get("FAULT_TEST_TRIALS", "20"))


def race(pool: ThreadPoolExecutor, calls: list) -> list:
    """Run the calls at once (each waits for all the others to be ready); results in order."""
    barrier = threading.Barrier(len(calls))

    def together(call):
        barrier.wait(timeout=30)
        return call()

    return list(pool.map(together, calls))


def stored_versions(logical_id: str) -> list[ResourceVersion]:
    return list(ResourceVersion.objects.filter(logical_id=logical_id).order_by("version_id"))


def name_in(version: ResourceVersion) -> str:
    return json.loads(version.content)["name"]


def test_same_if_match_one_winner_per_trial_and_no_lost_update(fhir):
    created = fhir.create(organization(marker()))
    assert created.status_code == 201, created.text
    logical_id = id_of(created)
    winners = []
    with ThreadPoolExecutor(RACERS) as pool:
        for trial in range(TRIALS):
            expected = 1 + trial
            bodies = [organization(marker(), logical_id=logical_id) for _ in range(RACERS)]
            responses = race(pool, [partial(fhir.update, b, if_match=expected) for b in bodies])
            statuses = Counter(r.status_code for r in responses)
            assert statuses == {200: 1, 412: RACERS - 1}, f"trial {trial}: {statuses}"
            (won,) = [(b, r) for b, r in zip(bodies, responses, strict=True) if r.ok]
            assert version_of(won[1]) == expected + 1
            winners.append(won[0]["name"])
    versions = stored_versions(logical_id)
    assert [v.version_id for v in versions] == list(range(1, TRIALS + 2))
    # Each new version holds exactly the body of the one request told it won.
    assert [name_in(v) for v in versions[1:]] == winners
    REPORTED.append(
        (
            "If-Match race",
            f"{TRIALS} trials of {RACERS} PUTs: {TRIALS} x 200, {TRIALS * (RACERS - 1)} x 412, "
            f"versions 1-{TRIALS + 1} with no gap, 0 lost updates",
        )
    )


def test_updates_without_if_match_serialise(fhir):
    created = fhir.create(organization(marker()))
    logical_id = id_of(created)
    bodies = [organization(marker(), logical_id=logical_id) for _ in range(RACERS)]
    with ThreadPoolExecutor(RACERS) as pool:
        responses = race(pool, [partial(fhir.update, b) for b in bodies])
    assert {r.status_code for r in responses} == {200}
    acknowledged = {version_of(r): b["name"] for b, r in zip(bodies, responses, strict=True)}
    assert sorted(acknowledged) == list(range(2, RACERS + 2)), "each update got its own version"
    versions = stored_versions(logical_id)
    assert [v.version_id for v in versions] == list(range(1, RACERS + 2))
    assert {v.version_id: name_in(v) for v in versions[1:]} == acknowledged


def test_concurrent_conditional_creates_create_exactly_one(fhir):
    with ThreadPoolExecutor(RACERS) as pool:
        for trial in range(max(1, TRIALS // 4)):
            value = marker()
            criteria = f"identifier={IDENTIFIER_SYSTEM}|{value}"
            bodies = [organization(marker(), value) for _ in range(RACERS)]
            responses = race(pool, [partial(fhir.create, b, criteria) for b in bodies])
            statuses = Counter(r.status_code for r in responses)
            assert statuses == {201: 1, 200: RACERS - 1}, f"trial {trial}: {statuses}"
            assert len({id_of(r) for r in responses}) == 1
            matching = TokenIndex.objects.filter(param="identifier", code=value)
            assert matching.count() == 1
            assert ResourceVersion.objects.filter(logical_id=id_of(responses[0])).count() == 1
    trials = max(1, TRIALS // 4)
    REPORTED.append(
        ("If-None-Exist race", f"{trials} trials of {RACERS} creates: one resource each time")
    )
