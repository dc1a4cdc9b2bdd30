"""The replica router's rules with a fake health check: no database, no replica needed."""

import random
import socket
from types import SimpleNamespace

import pytest
from django.db import connections

from config import dbrouter, replicas
from config.dbrouter import ReplicaRouter, request_scope
from config.middleware import ReadYourWritesMiddleware
from config.replicas import ReplicaHealth, dropped_by_server
from directory.models import Resource, SearchSnapshot, SearchSnapshotChunk
from security.models import ApiKey


class FakeHealth:
    """Healthy unless listed as down; counts the checks."""

    def __init__(self, down=()):
        self.down = set(down)
        self.asked = []

    def is_healthy(self, alias):
        self.asked.append(alias)
        return alias not in self.down


def make_router(replica_aliases=("replica1", "replica2"), down=(), seed=7):
    return ReplicaRouter(
        replicas=list(replica_aliases), health=FakeHealth(down), rng=random.Random(seed)
    )


@pytest.fixture
def sockets():
    """A connected socket pair standing in for a client connection and its server."""
    pair = socket.socketpair()
    yield pair
    for end in pair:
        end.close()


@pytest.fixture(autouse=True)
def _fresh_request():
    with request_scope():
        yield


def test_directory_reads_go_to_a_replica():
    assert make_router().db_for_read(Resource) in {"replica1", "replica2"}


def test_without_replicas_everything_reads_the_primary():
    assert make_router(replica_aliases=()).db_for_read(Resource) == "default"


def test_security_state_and_search_snapshots_read_the_primary():
    router = make_router()
    for model in (ApiKey, SearchSnapshot, SearchSnapshotChunk):
        assert router.db_for_read(model) == "default", model


def test_writes_go_to_the_primary_and_later_reads_follow():
    router = make_router()
    assert router.db_for_write(Resource) == "default"
    assert router.db_for_read(Resource) == "default"


def test_reads_inside_a_transaction_on_the_primary_read_the_primary(monkeypatch):
    monkeypatch.setattr(connections["default"], "in_atomic_block", True)
    assert make_router().db_for_read(Resource) == "default"


def test_a_request_sticks_to_one_replica():
    router = make_router(replica_aliases=("replica1", "replica2", "replica3"))
    chosen = {router.db_for_read(Resource) for _ in range(20)}
    assert len(chosen) == 1


def test_requests_spread_over_the_replicas():
    router = make_router(replica_aliases=("replica1", "replica2", "replica3"), seed=1)
    chosen = set()
    for _ in range(30):
        with request_scope():
            chosen.add(router.db_for_read(Resource))
    assert chosen == {"replica1", "replica2", "replica3"}


def test_a_down_replica_is_skipped():
    router = make_router(down={"replica1"})
    for _ in range(10):
        with request_scope():
            assert router.db_for_read(Resource) == "replica2"


def test_all_replicas_down_falls_back_to_the_primary():
    assert make_router(down={"replica1", "replica2"}).db_for_read(Resource) == "default"


def test_a_chosen_replica_that_goes_down_is_left_mid_request():
    router = make_router()
    first = router.db_for_read(Resource)
    router.health.down.add(first)
    assert router.db_for_read(Resource) not in {first, "default"}


def test_replicas_are_never_migrated():
    router = make_router()
    assert router.allow_migrate("default", "directory")
    assert not router.allow_migrate("replica1", "directory")


def test_settings_replicas_are_the_default_list(monkeypatch):
    databases = {"default": {}, "replica1": {}, "replica2": {}}
    monkeypatch.setattr(dbrouter, "settings", SimpleNamespace(DATABASES=databases))
    assert ReplicaRouter().replicas == ["replica1", "replica2"]


# ---------------------------------------------------------------- the per-request scope


def test_middleware_starts_each_request_unwritten():
    router = make_router()
    seen = []

    def view(request):
        seen.append(router.db_for_read(Resource))
        if request == "write":
            router.db_for_write(Resource)
            seen.append(router.db_for_read(Resource))
        return "response"

    middleware = ReadYourWritesMiddleware(view)
    assert middleware("write") == "response"
    assert seen[0].startswith("replica") and seen[1] == "default"
    assert not dbrouter.has_written()
    middleware("read")
    assert seen[2].startswith("replica")


# ---------------------------------------------------------------- health memory


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def make_health(answers, connection=None):
    calls, clock = [], Clock()

    def check(alias):
        calls.append(alias)
        return answers[alias]

    health = ReplicaHealth(ttl=3, check=check, connection_of=lambda alias: connection, clock=clock)
    return health, calls, clock


def test_a_failed_check_is_remembered_until_it_expires():
    health, calls, clock = make_health({"replica1": False})
    assert not health.is_healthy("replica1")
    assert not health.is_healthy("replica1")
    assert calls == ["replica1"]
    clock.now += 3
    health.is_healthy("replica1")
    assert calls == ["replica1", "replica1"]


def test_a_healthy_replica_with_an_open_connection_is_not_rechecked_within_the_ttl(sockets):
    health, calls, clock = make_health({"replica1": True}, connection=sockets[0])
    assert health.is_healthy("replica1")
    clock.now += 2
    assert health.is_healthy("replica1")
    assert calls == ["replica1"]
    clock.now += 1
    assert health.is_healthy("replica1")
    assert calls == ["replica1", "replica1"]


def test_without_an_open_connection_a_healthy_replica_is_checked_by_connecting():
    health, calls, _ = make_health({"replica1": True}, connection=None)
    health.is_healthy("replica1")
    health.is_healthy("replica1")
    assert calls == ["replica1", "replica1"]


def test_a_connection_the_server_hung_up_is_noticed_without_waiting(monkeypatch, sockets):
    monkeypatch.setattr(replicas, "discard", lambda alias: None)
    ours, theirs = sockets
    answers = {"replica1": True}
    health, calls, _ = make_health(answers, connection=ours)
    assert health.is_healthy("replica1")
    answers["replica1"] = False
    theirs.sendall(b"E")  # what a shutting-down server sends before it closes
    assert not health.is_healthy("replica1")
    assert calls == ["replica1", "replica1"]


def test_an_idle_socket_is_not_dropped_but_a_closed_one_is(sockets):
    ours, theirs = sockets
    assert not dropped_by_server(ours)
    theirs.close()
    assert dropped_by_server(ours)
    ours.close()
    assert dropped_by_server(ours)  # fileno() is -1: the driver closed it
