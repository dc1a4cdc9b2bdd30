"""Verification per NDH: the status extension through storage, who/when/how on file, the admin's
"verify" action and "not verified in N days" filter, and the `verification-status` search.

The extension is read back with the NDH SearchParameter's own FHIRPath expression (fhirpathpy),
so the shape written is the shape the IG's search parameter finds.
"""

from __future__ import annotations

import json
from datetime import timedelta

import fhirpathpy
import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone
from fhirpathpy.models import models

from directory import storage, verification
from directory.errors import InvalidRequest
from directory.models import Resource, VerificationRecord
from directory.registry import RESOURCES
from tests import plannet
from tests.directory.test_ndh_search_parameters import parameters
from tests.factories import OrganizationFactory, PractitionerFactory
from tests.security.staff import make_staff, signed_in_as

pytestmark = pytest.mark.django_db
ORGANIZATIONS = "/admin/directory/organizationrecord/"
[NDH_PARAM] = [p for p in parameters() if p["id"] == "verification-status"]


def stored(resource_type: str, logical_id: str) -> dict:
    return json.loads(storage.read(resource_type, logical_id).content)


def ndh_status(content: dict) -> list[str]:
    """The codes NDH's verification-status search parameter extracts from the resource."""
    values = fhirpathpy.evaluate(content, NDH_PARAM["expression"], model=models["r4"])
    return [coding["code"] for value in values for coding in value["coding"]]


def pk(resource_type: str, logical_id: str) -> int:
    return Resource.objects.get(resource_type=resource_type, logical_id=logical_id).pk


def age(record: VerificationRecord, days: int) -> None:
    VerificationRecord.objects.filter(pk=record.pk).update(
        time=timezone.now() - timedelta(days=days)
    )


# ---------------------------------------------------------------- the service


def test_verify_writes_the_ndh_extension_as_a_new_version_and_records_who_when_how():
    org = OrganizationFactory(name="Harbor Clinic")
    record = verification.verify(
        "Organization", org["id"], status="complete", process="primary", actor="ada", note="NPPES"
    )
    content = stored("Organization", org["id"])
    assert ndh_status(content) == ["complete"]
    assert content["meta"]["versionId"] == "2"
    assert (record.actor, record.process, record.version_id) == ("ada", "primary", 2)
    assert timezone.now() - record.time < timedelta(minutes=1)

    # A second verification replaces the status: never two extensions.
    verification.verify("Organization", org["id"], status="incomplete", process="multi", actor="b")
    assert ndh_status(stored("Organization", org["id"])) == ["incomplete"]
    assert VerificationRecord.objects.filter(logical_id=org["id"]).count() == 2


def test_other_extensions_are_kept():
    other = {"url": "http://example.org/ext", "valueString": "kept"}
    org = OrganizationFactory(extension=[other])
    verification.verify("Organization", org["id"], status="complete", process="primary", actor="a")
    assert other in stored("Organization", org["id"])["extension"]


def test_records_claiming_plan_net_profiles_accept_the_extension(settings):
    """The write goes through the profile validation: the IG's own examples stay valid."""
    settings.FHIR_UNIQUE_NPI = False  # the IG's examples share NPIs
    claimed = [
        example
        for example in plannet.examples()
        if example["resourceType"] in ("Practitioner", "Location") and example.get("meta")
    ]
    assert claimed
    for example in claimed:
        # References to records not loaded here are dropped (none is required by these profiles).
        example = {
            k: v for k, v in example.items() if k not in ("managingOrganization", "endpoint")
        }
        created = storage.create(example["resourceType"], example).row
        verification.verify(
            created.resource_type,
            created.logical_id,
            status="complete",
            process="primary",
            actor="a",
        )
        content = stored(created.resource_type, created.logical_id)
        assert content["meta"]["profile"] == example["meta"]["profile"]
        assert ndh_status(content) == ["complete"]


@pytest.mark.parametrize(
    "status, process", [("verified", "primary"), ("complete", "by-phone"), ("", "")]
)
def test_unknown_codes_are_refused_and_nothing_is_written(status, process):
    org = OrganizationFactory()
    with pytest.raises(InvalidRequest):
        verification.verify("Organization", org["id"], status=status, process=process, actor="a")
    assert stored("Organization", org["id"])["meta"]["versionId"] == "1"
    assert not VerificationRecord.objects.exists()


# ---------------------------------------------------------------- the admin


def post_action(browser, pks: list[int], **form):
    data = {"action": "verify_records", "_selected_action": [str(p) for p in pks], **form}
    return browser.post(ORGANIZATIONS, data)


def test_the_action_asks_first_then_verifies_and_logs(django_user_model):
    orgs = [OrganizationFactory(name=name) for name in ("Harbor Clinic", "Summit Hospital")]
    browser = signed_in_as(make_staff("ada", "admin"))
    pks = [pk("Organization", org["id"]) for org in orgs]

    asked = post_action(browser, pks)
    assert asked.status_code == 200
    assert 'id="verify-form"' in asked.content.decode()
    assert not VerificationRecord.objects.exists()

    done = post_action(
        browser, pks, apply="Verify", status="complete", process="standalone", note="checked"
    )
    assert done.status_code == 302
    assert sorted(
        VerificationRecord.objects.values_list("logical_id", "actor", "process")
    ) == sorted((org["id"], "ada", "standalone") for org in orgs)
    for org in orgs:
        assert ndh_status(stored("Organization", org["id"])) == ["complete"]
    logged = LogEntry.objects.filter(user__username="ada").values_list("change_message", flat=True)
    assert list(logged) == ["Verified: complete (standalone)."] * 2


def test_an_invalid_choice_shows_the_form_again_and_writes_nothing():
    org = OrganizationFactory()
    browser = signed_in_as(make_staff("ada", "admin"))
    again = post_action(browser, [pk("Organization", org["id"])], apply="Verify", status="bogus")
    assert again.status_code == 200 and 'id="verify-form"' in again.content.decode()
    assert not VerificationRecord.objects.exists()


@pytest.mark.parametrize("role", ["support", "auditor"])
def test_other_roles_cannot_verify(role):
    org = OrganizationFactory()
    browser = signed_in_as(make_staff("sam", role))
    response = post_action(
        browser, [pk("Organization", org["id"])], apply="Verify", status="complete", process="multi"
    )
    assert response.status_code == 403
    assert not VerificationRecord.objects.exists()


def test_not_verified_in_n_days_filter_and_column():
    fresh, stale, ancient = (OrganizationFactory(name=n) for n in ("Fresh", "Stale", "Ancient"))
    never = OrganizationFactory(name="Never")
    verification.verify("Organization", fresh["id"], status="complete", process="multi", actor="a")
    for org, days in ((stale, 100), (ancient, 400)):
        record = verification.verify(
            "Organization", org["id"], status="complete", process="multi", actor="a"
        )
        age(record, days)
    browser = signed_in_as(make_staff("ada", "admin"))

    def listed(days: int | None) -> set[str]:
        query = {"not_verified_days": str(days)} if days else {}
        response = browser.get(ORGANIZATIONS, query)
        assert response.status_code == 200
        return {
            name
            for name in ("Fresh", "Stale", "Ancient", "Never")
            if f">{name}</a>" in response.content.decode()
        }

    assert listed(None) == {"Fresh", "Stale", "Ancient", "Never"}
    assert listed(30) == listed(90) == {"Stale", "Ancient", "Never"}
    assert listed(365) == {"Ancient", "Never"}
    page = browser.get(ORGANIZATIONS).content.decode()
    assert f"{timezone.now():%Y-%m-%d} (complete)" in page and "never" in page
    assert never  # listed above under its name


def test_the_filter_is_one_index_probe_per_row_not_json():
    """The filter's SQL reads the verification rows only, never the resource JSON."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    OrganizationFactory()
    browser = signed_in_as(make_staff("ada", "admin"))
    with CaptureQueriesContext(connection) as queries:
        browser.get(ORGANIZATIONS, {"not_verified_days": "90"})
    listing = [q["sql"] for q in queries if "directory_verificationrecord" in q["sql"]]
    assert listing and all("NOT" in sql.upper() and "EXISTS" in sql.upper() for sql in listing[:1])


# ---------------------------------------------------------------- the API search


@pytest.mark.skipif(
    "verification-status" not in RESOURCES["Organization"].params,
    reason="verification-status arrives with the NDH SearchParameter registry (h-params' merge)",
)
def test_verification_status_search_returns_exactly_the_verified(api):
    verified = [OrganizationFactory(name=f"Verified {i}") for i in range(2)]
    pending = OrganizationFactory(name="Pending")
    OrganizationFactory(name="Never verified")
    other_type = PractitionerFactory()
    for org in verified:
        verification.verify(
            "Organization", org["id"], status="complete", process="multi", actor="a"
        )
    verification.verify(
        "Organization", pending["id"], status="incomplete", process="multi", actor="a"
    )
    verification.verify(
        "Practitioner", other_type["id"], status="complete", process="multi", actor="a"
    )

    def ids(query: str) -> set[str]:
        response = api.get(f"/fhir/Organization?{query}")
        assert response.status_code == 200, response.content
        return {entry["resource"]["id"] for entry in response.json().get("entry", [])}

    assert ids("verification-status=complete") == {org["id"] for org in verified}
    system = verification.STATUS_SYSTEM
    assert ids(f"verification-status={system}|incomplete") == {pending["id"]}
