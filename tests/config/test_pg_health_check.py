"""Kept-alive PostgreSQL connections: checked without a round trip only while that is sound.

config.postgresql replaces Django's per-request `SELECT 1` for a connection checked within the
last second by a look at its socket. A connection whose backend was terminated must still be
found unusable (and replaced) before a request uses it; an idle one still gets the real check.
"""

from __future__ import annotations

import time
from unittest import mock

import pytest
from django.db import connection, connections
from django.db.backends.postgresql.base import DatabaseWrapper as DjangoWrapper

from config.postgresql import base

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def own_connection():
    """A second connection to the test database, as a worker thread would hold."""
    if connection.vendor != "postgresql":
        pytest.skip("the PostgreSQL backend only")
    other = connections.create_connection("default")
    assert isinstance(other, base.DatabaseWrapper)
    other.connect()
    yield other
    other.close()


def _select_ones(wrapper):
    return mock.patch.object(DjangoWrapper, "is_usable", autospec=True, return_value=True)


def test_recently_used_connection_needs_no_round_trip(own_connection):
    with _select_ones(own_connection) as select_one:
        assert own_connection.is_usable()
        assert own_connection.is_usable()
    assert select_one.call_count == 0


def test_idle_connection_gets_the_select_one(own_connection, monkeypatch):
    monkeypatch.setattr(base, "IDLE_SECONDS", 0.05)
    time.sleep(0.1)
    with _select_ones(own_connection) as select_one:
        assert own_connection.is_usable()
    assert select_one.call_count == 1


def test_terminated_backend_is_found_unusable_at_once(own_connection):
    pid = own_connection.connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while not base._input_waiting(own_connection.connection.fileno()):
        assert time.monotonic() < deadline, "the server never told the connection"
        time.sleep(0.01)
    # Used a moment ago, yet not taken as usable: the real check runs and fails.
    assert not own_connection.is_usable()
    # What Django does at the start of the next request and at its first query: a new connection.
    own_connection.close_if_unusable_or_obsolete()
    with own_connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


def test_after_a_failed_statement_the_real_check_runs(own_connection):
    own_connection.errors_occurred = True
    with _select_ones(own_connection) as select_one:
        assert own_connection.is_usable()
    assert select_one.call_count == 1
