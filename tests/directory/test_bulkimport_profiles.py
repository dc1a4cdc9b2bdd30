"""`manage.py importndjson` and the import engine hold a plannet-PractitionerRole to its elements'
targetProfile as a create does: refused lines in the error file and exit status 1, forward targets
warned of at the end, and one look-up per batch however many lines it judges."""

from __future__ import annotations

import io
import json
from unittest import mock

import pytest
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from directory import bulkimport
from directory.models import Resource
from directory.profiles import targets
from tests.plannet_lines import PRACTITIONER_PROFILE, practitioner, role

from .test_bulkimport import run, write

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_verdicts():
    targets.VERDICTS.clear()
    yield
    targets.VERDICTS.clear()


def _lines(*resources: dict) -> list[str]:
    return [json.dumps(r) for r in resources]


def _outcomes(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_stored_non_conforming_target_refuses_the_line_and_exits_non_zero(tmp_path):
    run(write(tmp_path, "targets.ndjson", _lines(practitioner("p-bad", 2, conforming=False))))
    path = write(tmp_path, "roles.ndjson", _lines(role("r-bad", "p-bad"), role("r-x", "p-x")))
    with pytest.raises(CommandError) as raised:
        run(path)
    assert raised.value.returncode == 1
    issues = [i for o in _outcomes(tmp_path / "roles.ndjson.errors.ndjson") for i in o["issue"]]
    assert issues[0]["severity"] == "error"
    assert issues[0]["diagnostics"].startswith(
        "Line 1 (PractitionerRole/r-bad): PractitionerRole.practitioner.reference: the referenced "
        f"Practitioner does not conform to {PRACTITIONER_PROFILE}"
    )
    # The other role points at nothing stored: stored, and warned of as dangling.
    assert issues[1]["severity"] == "warning"
    assert "Practitioner/p-x does not exist" in issues[1]["diagnostics"]
    stored = Resource.objects.filter(resource_type="PractitionerRole")
    assert list(stored.values_list("logical_id", flat=True)) == ["r-x"]


def test_a_forward_target_is_warned_of_and_the_command_exits_zero(tmp_path):
    lines = _lines(role("r-bad", "p-bad"), practitioner("p-bad", 2, conforming=False))
    out, _ = run(write(tmp_path, "forward.ndjson", lines), "--batch-size", "1")
    assert "2 stored (Practitioner 1, PractitionerRole 1), 0 refused, 1 warning(s)" in out
    issue = _outcomes(tmp_path / "forward.ndjson.errors.ndjson")[0]["issue"][0]
    assert issue["severity"] == "warning"
    assert issue["diagnostics"].startswith("Line 1 (PractitionerRole/r-bad): stored, but ")


def test_an_updated_target_earlier_in_the_batch_is_judged_as_updated(tmp_path):
    run(write(tmp_path, "targets.ndjson", _lines(practitioner("p-1", 1, conforming=True))))
    lines = _lines(practitioner("p-1", 1, conforming=False), role("r-1", "p-1"))
    with pytest.raises(CommandError):
        run(write(tmp_path, "update.ndjson", lines))
    assert not Resource.objects.filter(resource_type="PractitionerRole").exists()
    assert Resource.objects.get(logical_id="p-1").version_id == 2


def _import_roles(tmp_path, count: int) -> tuple[int, int]:
    """(queries, profile validations) of importing `count` roles naming `count` stored
    conforming practitioners, in one batch."""
    people = [
        practitioner(f"p-{count}-{n}", 100 * count + n, conforming=True) for n in range(count)
    ]
    bulkimport.import_file(
        write(tmp_path, "p.ndjson", _lines(*people)), bulkimport.ErrorFile(io.StringIO())
    )
    roles = [role(f"r-{count}-{n}", p["id"]) for n, p in enumerate(people)]
    path = write(tmp_path, "r.ndjson", _lines(*roles))
    errors = io.StringIO()
    with (
        CaptureQueriesContext(connection) as queries,
        mock.patch.object(targets, "validate_profile", wraps=targets.validate_profile) as calls,
    ):
        summary = bulkimport.import_file(path, bulkimport.ErrorFile(errors))
    assert summary.stored == count and errors.getvalue() == ""
    return len(queries), calls.call_count


def test_the_targets_of_a_batch_are_judged_in_a_constant_number_of_queries(tmp_path):
    few_queries, few_judged = _import_roles(tmp_path, 2)
    targets.VERDICTS.clear()
    many_queries, many_judged = _import_roles(tmp_path, 8)
    assert (few_judged, many_judged) == (2, 8)  # every target judged, once
    assert many_queries == few_queries


def test_an_update_breaking_a_stored_referrers_profile_is_refused_as_put_is(tmp_path):
    stored = _lines(practitioner("p-1", 1, conforming=True), role("r-1", "p-1"))
    run(write(tmp_path, "stored.ndjson", stored))
    path = write(tmp_path, "update.ndjson", _lines(practitioner("p-1", 1, conforming=False)))
    with pytest.raises(CommandError):
        run(path)
    issue = _outcomes(tmp_path / "update.ndjson.errors.ndjson")[0]["issue"][0]
    assert issue["code"] == "conflict"
    assert issue["diagnostics"].startswith("Line 1 (Practitioner/p-1): Practitioner/p-1 would no")
    assert "PractitionerRole/r-1" in issue["diagnostics"]
    assert Resource.objects.get(logical_id="p-1").version_id == 1


def test_a_batch_moving_the_referrer_away_lets_the_targets_update_through(tmp_path):
    """Judged on the state the batch leaves, as a transaction Bundle is."""
    stored = _lines(
        practitioner("p-1", 1, conforming=True),
        practitioner("p-2", 2, conforming=True),
        role("r-1", "p-1"),
    )
    run(write(tmp_path, "stored.ndjson", stored))
    lines = _lines(practitioner("p-1", 1, conforming=False), role("r-1", "p-2"))
    out, _ = run(write(tmp_path, "moved.ndjson", lines))
    assert "2 stored (Practitioner 1, PractitionerRole 1), 0 refused" in out
    assert Resource.objects.get(logical_id="p-1").version_id == 2


def test_a_target_its_batch_validated_against_the_profile_is_not_judged_again(tmp_path):
    claiming = practitioner("p-1", 1, conforming=True)
    unclaimed = {k: v for k, v in practitioner("p-2", 2, conforming=True).items() if k != "meta"}
    lines = _lines(claiming, role("r-1", "p-1"), unclaimed, role("r-2", "p-2"))
    with mock.patch.object(targets, "validate_profile", wraps=targets.validate_profile) as calls:
        summary = bulkimport.import_file(
            write(tmp_path, "batch.ndjson", lines), bulkimport.ErrorFile(io.StringIO())
        )
    assert summary.stored == 4 and summary.errors == 0
    # p-1 was held to plannet-Practitioner as it was read; p-2 claims nothing: judged here.
    assert [c.args[1] for c in calls.call_args_list] == [PRACTITIONER_PROFILE]
    assert calls.call_args_list[0].args[0]["id"] == "p-2"
