"""A history check of a concurrent mixed workload through real gunicorn workers on PostgreSQL.

Threads create, update (with and without If-Match), delete and conditionally create at random,
recording every acknowledged write with the unique name it carried. Afterwards the database must
agree: every acknowledged write is the version it was told it is, nothing unacknowledged was
stored, versions have no gaps, and each conditional create's criteria matched one resource only.
"""

from __future__ import annotations

import json
import random
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from directory.models import Resource, ResourceVersion

from .fhir import IDENTIFIER_SYSTEM, FhirClient, id_of, marker, organization, version_of

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

THREADS, OPERATIONS, SEEDED, IDENTIFIERS = 12, 40, 6, 3


@dataclass(frozen=True)
class Write:
    logical_id: str
    version: int
    method: str
    name: str


@dataclass(frozen=True)
class Delete:
    logical_id: str
    sent: datetime
    acknowledged: datetime


@dataclass
class History:
    """What the clients were told, shared by the workload threads."""

    writes: list[Write] = field(default_factory=list)
    deletes: list[Delete] = field(default_factory=list)
    matches: dict[str, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    unexpected: list[tuple[str, int, str]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    known_version: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wrote(self, response, method: str, name: str) -> None:
        write = Write(id_of(response), version_of(response), method, name)
        with self.lock:
            self.writes.append(write)
            self.known_version[write.logical_id] = write.version


class Workload:
    def __init__(self, fhir: FhirClient, history: History, identifiers: list[str]):
        self.fhir, self.history, self.identifiers = fhir, history, identifiers

    def run(self, seed: int) -> None:
        chance = random.Random(seed)
        steps = [self.create, self.update, self.update, self.delete, self.conditional_create]
        for _ in range(OPERATIONS):
            chance.choice(steps)(chance)

    def expect(self, what: str, response, allowed: set[int]) -> bool:
        if response.status_code not in allowed:
            with self.history.lock:
                self.history.unexpected.append((what, response.status_code, response.text[:200]))
        return response.ok

    def create(self, chance) -> None:
        name = marker()
        response = self.fhir.create(organization(name))
        if self.expect("create", response, {201}):
            self.history.wrote(response, "POST", name)
            with self.history.lock:
                self.history.ids.append(id_of(response))

    def update(self, chance) -> None:
        with self.history.lock:
            logical_id = chance.choice(self.history.ids)
            known = self.history.known_version[logical_id]
        name = marker()
        if_match = known if chance.random() < 0.5 else None
        response = self.fhir.update(organization(name, logical_id=logical_id), if_match)
        # 412: someone else wrote first, or deleted it; 201: an update revived a deleted one.
        if self.expect("update", response, {200, 201, 412}):
            self.history.wrote(response, "PUT", name)

    def delete(self, chance) -> None:
        with self.history.lock:
            logical_id = chance.choice(self.history.ids)
        sent = datetime.now(UTC)
        response = self.fhir.delete(logical_id)
        if self.expect("delete", response, {204}):
            with self.history.lock:
                self.history.deletes.append(Delete(logical_id, sent, datetime.now(UTC)))

    def conditional_create(self, chance) -> None:
        value, name = chance.choice(self.identifiers), marker()
        criteria = f"identifier={IDENTIFIER_SYSTEM}|{value}"
        response = self.fhir.create(organization(name, value), criteria)
        if self.expect("conditional create", response, {200, 201}):
            with self.history.lock:
                self.history.matches[value].append((response.status_code, id_of(response)))
            if response.status_code == 201:
                self.history.wrote(response, "POST", name)


def test_every_acknowledged_write_is_in_history_and_nothing_else(fhir):
    history = History()
    for _ in range(SEEDED):
        name = marker()
        response = fhir.create(organization(name))
        history.wrote(response, "POST", name)
        history.ids.append(id_of(response))
    workload = Workload(fhir, history, [marker() for _ in range(IDENTIFIERS)])
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(workload.run, range(THREADS)))

    assert history.unexpected == []
    stored = list(ResourceVersion.objects.order_by("logical_id", "version_id"))
    assert_acknowledged_writes_stored(history, stored)
    assert_versions_gap_free(stored)
    assert_one_resource_per_conditional_create(history)
    assert_deletes_took_effect(history, stored)


def assert_acknowledged_writes_stored(history: History, stored: list[ResourceVersion]) -> None:
    by_key = {(v.logical_id, v.version_id): v for v in stored}
    for write in history.writes:
        version = by_key.get((write.logical_id, write.version))
        assert version is not None, f"acknowledged {write} is not in history"
        assert (version.method, json.loads(version.content)["name"]) == (write.method, write.name)
    # Nothing was stored that no client was told about (a 412 left no trace).
    names = {json.loads(v.content)["name"] for v in stored if v.method != "DELETE"}
    assert names == {write.name for write in history.writes}


def assert_versions_gap_free(stored: list[ResourceVersion]) -> None:
    numbers = defaultdict(list)
    for version in stored:
        numbers[version.logical_id].append(version.version_id)
    current = dict(Resource.objects.values_list("logical_id", "version_id"))
    assert set(numbers) == set(current)
    for logical_id, found in numbers.items():
        assert found == list(range(1, current[logical_id] + 1)), logical_id


def assert_one_resource_per_conditional_create(history: History) -> None:
    for value, outcomes in history.matches.items():
        assert len({logical_id for _, logical_id in outcomes}) == 1, value
        assert [status for status, _ in outcomes].count(201) == 1, value
        created = Resource.objects.filter(content__contains=value)
        assert created.count() == 1, value


def assert_deletes_took_effect(history: History, stored: list[ResourceVersion]) -> None:
    """Each acknowledged delete left the resource deleted at some moment between send and reply.

    Either its own DELETE version or one it found already there: a DELETE stamped before the reply
    whose next version (if any) was stamped after the request was sent.
    """
    by_id = defaultdict(list)
    for version in stored:
        by_id[version.logical_id].append(version)
    for delete in history.deletes:
        versions = by_id[delete.logical_id]
        assert any(
            version.method == "DELETE"
            and version.last_updated <= delete.acknowledged
            and (later is None or later.last_updated >= delete.sent)
            for version, later in zip(versions, [*versions[1:], None], strict=True)
        ), f"acknowledged delete of {delete.logical_id} is not in history"
