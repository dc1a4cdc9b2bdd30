"""Data quality: NPI checks and unique identifiers in the admin and loaders, duplicates, merges."""

import json

import pytest
from django.urls import reverse

from directory import bulkload, storage
from directory.models import MergeRecord, Resource, ResourceVersion, UniqueIdentifierSystem
from tests.factories import (
    NPI_SYSTEM,
    OrganizationFactory,
    PractitionerFactory,
    PractitionerRoleFactory,
    make_npi,
)
from tests.security.staff import make_staff, signed_in_as

pytestmark = pytest.mark.django_db

DUPLICATES = "admin:directory_duplicates"
MERGE = "admin:directory_merge"


def text(response) -> str:
    return response.content.decode()


@pytest.fixture
def administrator():
    return signed_in_as(make_staff("dora", "admin"))


@pytest.fixture
def support():
    return signed_in_as(make_staff("sam", "support"))


def test_a_bad_npi_is_refused_in_the_admin_naming_the_element(administrator):
    content = {
        "resourceType": "Practitioner",
        "name": [{"family": "Osei"}],
        "identifier": [{"system": NPI_SYSTEM, "value": "1234567890"}],
    }
    response = administrator.post(
        reverse("admin:directory_practitionerrecord_add"), {"content_json": json.dumps(content)}
    )
    assert response.status_code == 200
    assert "Practitioner.identifier[0].value: not a valid NPI" in text(response)
    assert not Resource.objects.exists()


def test_a_second_holder_of_an_npi_is_refused_in_the_admin(administrator):
    PractitionerFactory(identifier=[{"system": NPI_SYSTEM, "value": make_npi(5)}])
    content = {
        "resourceType": "Organization",
        "name": "Osei Practice",
        "identifier": [{"system": NPI_SYSTEM, "value": make_npi(5)}],
    }
    response = administrator.post(
        reverse("admin:directory_organizationrecord_add"), {"content_json": json.dumps(content)}
    )
    assert response.status_code == 200
    assert "already identifies another Practitioner or Organization" in text(response)
    assert not Resource.objects.filter(resource_type="Organization").exists()


def test_administrators_mark_systems_unique_and_others_cannot(administrator, support):
    add = reverse("admin:directory_uniqueidentifiersystem_add")
    assert support.get(add).status_code == 403
    bad = {"system": "https://example.org/license", "resource_types": "Practitioner,Nope"}
    assert "Name one or more of" in text(administrator.post(add, bad))
    good = {"system": "https://example.org/license", "resource_types": "Practitioner, Organization"}
    assert administrator.post(add, good).status_code == 302
    row = UniqueIdentifierSystem.objects.get()
    assert row.types() == ("Practitioner", "Organization")


@pytest.fixture
def pair():
    """Two records of one practitioner (alike names, one phone) and a role naming the second."""
    phone = [{"system": "phone", "value": "(207) 555-0142"}]
    keep = PractitionerFactory(id="p-keep", name=[{"family": "Osei", "given": ["Ama"]}])
    storage.update("Practitioner", "p-keep", {**keep, "telecom": phone})
    other = PractitionerFactory(id="p-dup", name=[{"family": "Osei", "given": ["Amma"]}])
    storage.update(
        "Practitioner", "p-dup", {**other, "telecom": [{**phone[0], "value": "207.555.0142"}]}
    )
    PractitionerFactory(id="p-else", name=[{"family": "Mensah", "given": ["Kofi"]}], telecom=phone)
    org = OrganizationFactory(id="o1")
    PractitionerRoleFactory(
        id="r1",
        practitioner={"reference": "Practitioner/p-dup"},
        organization={"reference": f"Organization/{org['id']}"},
    )
    return keep, other


def test_duplicates_are_listed_with_a_score(administrator, pair):
    response = administrator.get(reverse(DUPLICATES), {"type": "Practitioner"})
    assert response.status_code == 200
    body = text(response)
    assert body.count('class="duplicate-pair"') == 1
    assert "Ama Osei" in body and "Amma Osei" in body and "Mensah" not in body
    assert "phone" in body
    score = int(body.split('class="score">')[1].split("<")[0])
    assert 70 <= score <= 100


def test_merge_rewrites_references_keeps_histories_and_audits(administrator, pair):
    response = administrator.post(
        reverse(MERGE), {"type": "Practitioner", "keep": "p-keep", "merge": "p-dup"}
    )
    assert response.status_code == 302
    role = json.loads(storage.read("PractitionerRole", "r1").content)
    assert role["practitioner"]["reference"] == "Practitioner/p-keep"
    assert role["meta"]["versionId"] == "2"
    assert Resource.objects.get(logical_id="p-dup").deleted
    methods = list(
        ResourceVersion.objects.filter(logical_id="p-dup")
        .order_by("version_id")
        .values_list("method", flat=True)
    )
    assert len(methods) == 3 and methods[-1] == "DELETE"
    assert ResourceVersion.objects.filter(logical_id="p-keep").count() == 2
    # The search index follows: the role is found by the kept practitioner.
    assert storage.ReferenceIndex.objects.filter(
        resource__logical_id="r1", target_id="p-keep"
    ).exists()
    record = MergeRecord.objects.get()
    assert (record.actor, record.kept_id, record.merged_id) == ("dora", "p-keep", "p-dup")
    assert record.rewritten == ["PractitionerRole/r1"]
    listing = administrator.get(reverse(DUPLICATES))
    assert 'class="duplicate-pair"' not in text(listing)


def test_merge_and_duplicates_are_refused_without_permission(support, pair):
    assert support.get(reverse(DUPLICATES)).status_code == 403
    response = support.post(
        reverse(MERGE), {"type": "Practitioner", "keep": "p-keep", "merge": "p-dup"}
    )
    assert response.status_code == 403
    assert not Resource.objects.get(logical_id="p-dup").deleted
    assert json.loads(storage.read("PractitionerRole", "r1").content)["meta"]["versionId"] == "1"
    assert not MergeRecord.objects.exists()


def test_a_refused_merge_changes_nothing(administrator, pair):
    response = administrator.post(
        reverse(MERGE), {"type": "Practitioner", "keep": "gone", "merge": "p-dup"}, follow=True
    )
    assert "Not merged" in text(response)
    assert not Resource.objects.get(logical_id="p-dup").deleted
    assert not MergeRecord.objects.exists()


def npi_practitioner(logical_id: str, npi: str) -> tuple[str, dict]:
    content = {"resourceType": "Practitioner", "id": logical_id}
    return "Practitioner", {**content, "identifier": [{"system": NPI_SYSTEM, "value": npi}]}


def test_loaders_check_npis_and_their_uniqueness():
    from directory.errors import Conflict, InvalidResource

    with pytest.raises(InvalidResource):
        bulkload.bulk_load([npi_practitioner("a", "1234567890")])
    with pytest.raises(Conflict):
        bulkload.bulk_load([npi_practitioner("a", make_npi(1)), npi_practitioner("b", make_npi(1))])
    assert bulkload.bulk_load([npi_practitioner("a", make_npi(1))]) == 1
    with pytest.raises(Conflict):
        bulkload.bulk_load([npi_practitioner("b", make_npi(1))])
    assert list(Resource.objects.values_list("logical_id", flat=True)) == ["a"]


def test_shared_npis_are_stored_when_npi_uniqueness_is_off(settings):
    """Published example data (the Plan-Net IG's) gives one NPI to several records."""
    from directory.errors import InvalidResource

    settings.FHIR_UNIQUE_NPI = False
    npi = make_npi(1)
    assert bulkload.bulk_load([npi_practitioner("a", npi), npi_practitioner("b", npi)]) == 2
    storage.create(*npi_practitioner("c", npi), logical_id="c")
    # The check digit still holds: only uniqueness is relaxed.
    with pytest.raises(InvalidResource):
        bulkload.bulk_load([npi_practitioner("d", "1234567890")])
    assert Resource.objects.count() == 3


def test_a_contact_point_shared_by_many_pairs_none(administrator, pair, settings):
    settings.DUPLICATES_MAX_GROUP = 2  # the fixture's phone is shared by three practitioners
    response = administrator.get(reverse(DUPLICATES), {"type": "Practitioner"})
    assert 'class="duplicate-pair"' not in text(response)


def test_organizations_with_alike_names_and_one_address_are_paired(administrator):
    address = {"line": ["12 Harbor St"], "city": "Portland", "postalCode": "04101"}
    OrganizationFactory(id="o-a", name="Bay Clinic, Inc.", address=[address])
    OrganizationFactory(
        id="o-b", name="Bay Clinic", address=[{**address, "line": ["12 HARBOR ST"]}]
    )
    OrganizationFactory(id="o-c", name="Summit Hospital", address=[address])
    body = text(administrator.get(reverse(DUPLICATES), {"type": "Organization"}))
    assert body.count('class="duplicate-pair"') == 1
    assert "(o-a)" in body and "(o-b)" in body and "(o-c)" not in body
    assert ">address<" in body


def test_the_duplicates_page_reads_no_more_for_more_unrelated_records(administrator, pair):
    """Pairs come from grouped index queries: records sharing nothing add no query and are
    never read."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def page_queries() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            body = text(administrator.get(reverse(DUPLICATES), {"type": "Practitioner"}))
        assert body.count('class="duplicate-pair"') == 1
        return [q["sql"] for q in captured.captured_queries]

    before = page_queries()
    for n in range(40):
        PractitionerFactory(
            name=[{"family": f"Unrelated{n}", "given": ["Kim"]}],
            telecom=[{"system": "phone", "value": f"(312) 555-{n:04d}"}],
            address=[{"line": [f"{n} Elm St"], "city": f"Town{n}", "postalCode": f"6{n:04d}"}],
        )
    after = page_queries()
    assert len(after) == len(before)
    # Only the paired records' content is read: no query selects every Practitioner's JSON.
    reads = [q for q in after if '"content"' in q and "directory_resource" in q]
    assert reads and all("IN (" in q for q in reads), after
