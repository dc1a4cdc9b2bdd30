"""`manage.py loaddirectory` (and `bulk_load`, which `generatedirectory` shares) hold a
plannet-PractitionerRole to its elements' targetProfile as a create does: a Bundle file naming a
non-conforming practitioner loads nothing, a conforming one loads, judged once per batch."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from directory import bulkload
from directory.errors import UnprocessableReference
from directory.models import Resource
from directory.profiles import targets
from tests.plannet_lines import PRACTITIONER_PROFILE, practitioner, role

from .test_commands import run, write_bundle

pytestmark = pytest.mark.django_db

REFUSAL = (
    r"PractitionerRole/r-1: PractitionerRole\.practitioner\.reference: the referenced "
    rf"Practitioner does not conform to {PRACTITIONER_PROFILE}, which "
    r"PractitionerRole\.practitioner requires; nothing was loaded"
)


@pytest.fixture(autouse=True)
def fresh_verdicts():
    targets.VERDICTS.clear()
    yield
    targets.VERDICTS.clear()


def _stored(rtype: str) -> list[str]:
    return sorted(Resource.objects.filter(resource_type=rtype).values_list("logical_id", flat=True))


def _unclaimed(content: dict) -> dict:
    """A conforming practitioner claiming no profile: judged, not taken on its word."""
    return {k: v for k, v in content.items() if k != "meta"}


def test_a_role_naming_a_nonconforming_practitioner_in_the_file_loads_nothing(tmp_path):
    bundle = write_bundle(tmp_path, [practitioner("p-1", 1, conforming=False), role("r-1", "p-1")])
    with pytest.raises(CommandError, match=REFUSAL):
        run("loaddirectory", bundle)
    assert Resource.objects.count() == 0


def test_a_role_naming_a_stored_nonconforming_practitioner_loads_nothing(tmp_path):
    # Stored before by a load that skips the checks (generatedirectory --no-reference-check).
    bulkload.bulk_load(
        [("Practitioner", practitioner("p-1", 1, conforming=False))], check_references=False
    )
    others = [practitioner("p-2", 2, conforming=True), role("r-2", "p-2")]
    bundle = write_bundle(tmp_path, [*others, role("r-1", "p-1")])
    # One resource per batch: the conforming ones are written first, and roll back too.
    with pytest.raises(CommandError, match=REFUSAL):
        run("loaddirectory", bundle, batch_size=1)
    assert _stored("Practitioner") == ["p-1"]
    assert _stored("PractitionerRole") == []


def test_roles_naming_conforming_practitioners_load(tmp_path):
    people = [practitioner("p-1", 1, conforming=True), practitioner("p-2", 2, conforming=True)]
    unclaimed = _unclaimed(people[1])
    bundle = write_bundle(tmp_path, [people[0], unclaimed, role("r-1", "p-1"), role("r-2", "p-2")])
    with mock.patch.object(targets, "validate_profile", wraps=targets.validate_profile) as calls:
        output = run("loaddirectory", bundle, batch_size=1)
    assert "Loaded 4 resources" in output
    # Each practitioner was judged (stored by an earlier batch), not taken on its claim.
    judged = sorted((c.args[0]["id"], c.args[1]) for c in calls.call_args_list)
    assert judged == [("p-1", PRACTITIONER_PROFILE), ("p-2", PRACTITIONER_PROFILE)]
    assert _stored("PractitionerRole") == ["r-1", "r-2"]


def test_bulk_load_names_every_failing_role_and_can_skip_the_check():
    bulkload.bulk_load(
        [("Practitioner", practitioner(f"p-{n}", n, conforming=False)) for n in (1, 2)],
        check_references=False,
    )
    roles = [("PractitionerRole", role(f"r-{n}", f"p-{n}")) for n in (1, 2)]
    with pytest.raises(UnprocessableReference) as refused:
        bulkload.bulk_load(roles)
    assert refused.value.diagnostics.endswith("requires (and 1 more)")
    names = [issue["diagnostics"].split(":")[0] for issue in refused.value.issues()]
    assert names == ["PractitionerRole/r-1", "PractitionerRole/r-2"]
    assert _stored("PractitionerRole") == []
    # generatedirectory --no-reference-check: not judged, stored.
    assert bulkload.bulk_load(roles, check_references=False) == 2


def _load_roles(count: int) -> tuple[int, int]:
    """(queries, profile validations) of bulk-loading `count` roles naming `count` stored
    conforming practitioners that claim no profile, in one batch."""
    people = [
        _unclaimed(practitioner(f"p-{count}-{n}", 100 * count + n, conforming=True))
        for n in range(count)
    ]
    bulkload.bulk_load([("Practitioner", p) for p in people])
    roles = [("PractitionerRole", role(f"r-{count}-{n}", p["id"])) for n, p in enumerate(people)]
    with (
        CaptureQueriesContext(connection) as queries,
        mock.patch.object(targets, "validate_profile", wraps=targets.validate_profile) as calls,
    ):
        assert bulkload.bulk_load(roles) == count
    return len(queries), calls.call_count


def test_the_targets_of_a_batch_are_judged_in_a_constant_number_of_queries():
    few_queries, few_judged = _load_roles(2)
    many_queries, many_judged = _load_roles(8)
    assert (few_judged, many_judged) == (2, 8)  # every target judged, once
    assert many_queries == few_queries
