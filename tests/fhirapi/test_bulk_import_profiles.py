"""`$import` over a real socket holds a plannet-PractitionerRole to its elements' targetProfile as
a create does (test_reference_profiles.py): a line whose stored target, or one earlier in its
batch, does not conform is a line error naming the element and the profile, and is not stored;
a target the file brings later is judged at the end and warned of (the line is stored)."""

from __future__ import annotations

import pytest

from directory.models import Resource
from directory.profiles import targets
from tests.plannet_lines import (
    ORGANIZATION_PROFILE,
    PRACTITIONER_PROFILE,
    organization,
    practitioner,
    role,
)

from . import test_bulk_import as bulk
from .test_bulk_import import imported, ndjson

pytestmark = pytest.mark.django_db(transaction=True)

# The $import tests' fixtures: a client sending requests, jobs run between them on SQLite.
importer = bulk.importer
_sqlite_requests_between_job_runs = bulk._sqlite_requests_between_job_runs


@pytest.fixture(autouse=True)
def fresh_verdicts():
    targets.VERDICTS.clear()
    yield
    targets.VERDICTS.clear()


def _stored(resource_type: str) -> set[str]:
    rows = Resource.objects.filter(resource_type=resource_type, deleted=False)
    return set(rows.values_list("logical_id", flat=True))


def _issues(outcomes: list[dict]) -> list[dict]:
    return [issue for outcome in outcomes for issue in outcome["issue"]]


def test_a_role_naming_a_stored_non_conforming_target_is_a_line_error(importer):
    targets_file = ndjson(
        practitioner("p-good", 1, conforming=True),
        practitioner("p-bad", 2, conforming=False),
        organization("o-closed"),
    )
    manifest, outcomes = imported(importer, targets_file)
    assert outcomes == []
    roles = ndjson(
        role("r-bad", "p-bad"),
        role("r-good", "p-good"),
        role("r-org", "p-good", organization_id="o-closed"),
    )
    manifest, outcomes = imported(importer, roles)
    assert [(o["type"], o["count"]) for o in manifest["output"]] == [("PractitionerRole", 1)]
    issues = _issues(outcomes)
    assert [i["severity"] for i in issues] == ["error", "error"]
    first, second = (i["diagnostics"] for i in issues)
    assert first.startswith("Line 1 (PractitionerRole/r-bad): PractitionerRole.practitioner")
    assert PRACTITIONER_PROFILE in first
    assert issues[0]["expression"] == ["PractitionerRole.practitioner.reference"]
    assert second.startswith("Line 3 (PractitionerRole/r-org): PractitionerRole.organization")
    assert ORGANIZATION_PROFILE in second
    # The target's own failure (its `active`) is not the importer's to learn.
    assert "active" not in first
    assert _stored("PractitionerRole") == {"r-good"}


def test_a_target_earlier_in_the_same_batch_is_judged_with_the_batch(importer):
    body = ndjson(
        practitioner("p-bad", 2, conforming=False),
        role("r-bad", "p-bad"),
        practitioner("p-good", 1, conforming=True),
        role("r-good", "p-good"),
    )
    _, outcomes = imported(importer, body)
    issues = _issues(outcomes)
    assert len(issues) == 1
    assert issues[0]["severity"] == "error"
    assert issues[0]["diagnostics"].startswith("Line 2 (PractitionerRole/r-bad): ")
    assert _stored("PractitionerRole") == {"r-good"}
    assert _stored("Practitioner") == {"p-bad", "p-good"}


def test_a_target_the_file_brings_later_is_judged_at_the_end_and_warned(importer, settings):
    settings.FHIR_IMPORT_BATCH_SIZE = 1  # the role's batch is written before its target is read
    body = ndjson(
        role("r-bad", "p-bad"),
        role("r-good", "p-good"),
        practitioner("p-bad", 2, conforming=False),
        practitioner("p-good", 1, conforming=True),
    )
    _, outcomes = imported(importer, body)
    issues = _issues(outcomes)
    assert [i["severity"] for i in issues] == ["warning"]
    assert issues[0]["diagnostics"].startswith(
        "Line 1 (PractitionerRole/r-bad): stored, but PractitionerRole.practitioner"
    )
    assert PRACTITIONER_PROFILE in issues[0]["diagnostics"]
    assert _stored("PractitionerRole") == {"r-bad", "r-good"}
