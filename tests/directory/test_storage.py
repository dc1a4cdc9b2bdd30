"""Storage: versioning, optimistic locking, referential integrity, validation, bulk loading."""

import threading

import pytest
from django.db import connection

from directory import bulkload, storage
from directory.errors import (
    Conflict,
    Gone,
    InvalidRequest,
    InvalidResource,
    NotFound,
    PreconditionFailed,
    UnprocessableReference,
)
from directory.models import ReferenceIndex, Resource, ResourceVersion, StringIndex, TokenIndex
from tests.factories import (
    EndpointFactory,
    OrganizationFactory,
    PractitionerFactory,
    PractitionerRoleFactory,
)

pytestmark = pytest.mark.django_db


def test_create_assigns_id_and_first_version_ignoring_client_values():
    content = OrganizationFactory.build(id="client-chosen", meta={"versionId": "99"})
    result = storage.create("Organization", content)
    assert result.created
    assert result.row.logical_id != "client-chosen"
    assert result.content["meta"]["versionId"] == "1"
    assert result.content["meta"]["lastUpdated"].endswith("Z")
    assert list(result.content)[:3] == ["resourceType", "id", "meta"]


def test_update_bumps_version_and_keeps_every_version_readable():
    org = OrganizationFactory.create(name="First name")
    org["name"] = "Second name"
    result = storage.update("Organization", org["id"], org)
    assert not result.created and result.content["meta"]["versionId"] == "2"
    first = storage.vread("Organization", org["id"], "1")
    assert '"First name"' in first.content
    assert storage.read("Organization", org["id"]).version_id == 2


def test_update_with_stale_etag_is_refused_and_changes_nothing():
    org = OrganizationFactory.create()
    org["name"] = "Changed"
    storage.update("Organization", org["id"], org, if_match='W/"1"')
    org["name"] = "Lost update"
    with pytest.raises(PreconditionFailed):
        storage.update("Organization", org["id"], org, if_match='W/"1"')
    assert '"Changed"' in storage.read("Organization", org["id"]).content


@pytest.mark.parametrize("etag", ['W/"x"', "garbage", ""])
def test_malformed_if_match_is_a_bad_request(etag):
    org = OrganizationFactory.create()
    with pytest.raises(InvalidRequest):
        storage.update("Organization", org["id"], org, if_match=etag)


def test_update_creates_with_client_id_when_absent():
    content = PractitionerFactory.build(id="dr-new")
    result = storage.update("Practitioner", "dr-new", content)
    assert result.created and result.content["meta"]["versionId"] == "1"


@pytest.mark.parametrize(
    ("url_id", "body_id"), [("a1", "a2"), ("a1", None)], ids=["mismatch", "missing"]
)
def test_update_requires_body_id_equal_to_url_id(url_id, body_id):
    content = PractitionerFactory.build(id=body_id)
    with pytest.raises(InvalidRequest):
        storage.update("Practitioner", url_id, content)
    assert not Resource.objects.filter(logical_id=url_id).exists()


def test_invalid_id_is_refused():
    with pytest.raises(InvalidRequest):
        storage.update("Practitioner", "bad id!", PractitionerFactory.build(id="bad id!"))


def test_delete_makes_reads_gone_keeps_history_and_removes_index_rows():
    org = OrganizationFactory.create()
    pk = Resource.objects.get(logical_id=org["id"]).pk
    assert StringIndex.objects.filter(resource_id=pk).exists()
    assert storage.delete("Organization", org["id"]) is True
    assert storage.delete("Organization", org["id"]) is False
    with pytest.raises(Gone):
        storage.read("Organization", org["id"])
    with pytest.raises(Gone):
        storage.vread("Organization", org["id"], "2")
    assert storage.vread("Organization", org["id"], "1").version_id == 1
    assert not StringIndex.objects.filter(resource_id=pk).exists()
    assert not TokenIndex.objects.filter(resource_id=pk).exists()
    page, _ = storage.history_page(resource_type="Organization", logical_id=org["id"])
    assert [(v.version_id, v.method) for v in page] == [(2, "DELETE"), (1, "PUT")]


def test_update_after_delete_revives_with_next_version():
    org = OrganizationFactory.create()
    storage.delete("Organization", org["id"])
    result = storage.update("Organization", org["id"], org)
    assert result.created and result.content["meta"]["versionId"] == "3"


def test_read_unknown_is_not_found():
    with pytest.raises(NotFound):
        storage.read("Organization", "nope")
    with pytest.raises(NotFound):
        storage.vread("Organization", "nope", "1")


def test_reference_to_missing_resource_is_refused_without_partial_write():
    before = ResourceVersion.objects.count()
    with pytest.raises(UnprocessableReference):
        PractitionerRoleFactory.create(practitioner={"reference": "Practitioner/missing"})
    assert ResourceVersion.objects.count() == before


def test_reference_to_deleted_resource_is_refused():
    org = OrganizationFactory.create()
    storage.delete("Organization", org["id"])
    with pytest.raises(UnprocessableReference):
        PractitionerRoleFactory.create(organization={"reference": f"Organization/{org['id']}"})


def test_absolute_reference_to_another_server_is_kept_external():
    role = PractitionerRoleFactory.create(
        practitioner={"reference": "https://other.example.org/fhir/Practitioner/77"}
    )
    row = ReferenceIndex.objects.get(resource__logical_id=role["id"], param="practitioner")
    assert row.external and row.target_id == "77"


def test_delete_of_referenced_resource_conflicts():
    org = OrganizationFactory.create()
    PractitionerRoleFactory.create(organization={"reference": f"Organization/{org['id']}"})
    with pytest.raises(Conflict):
        storage.delete("Organization", org["id"])
    assert storage.read("Organization", org["id"])


def test_invalid_content_names_the_element():
    content = OrganizationFactory.build(active="maybe")
    with pytest.raises(InvalidResource) as caught:
        storage.create("Organization", content)
    assert caught.value.status == 422
    assert "Organization.active" in caught.value.issues()[0]["expression"]


def test_unknown_element_is_refused():
    with pytest.raises(InvalidResource) as caught:
        storage.create("Organization", OrganizationFactory.build(colour="blue"))
    assert caught.value.issues()[0]["expression"] == ["Organization.colour"]


def test_required_binding_is_enforced():
    with pytest.raises(InvalidResource) as caught:
        storage.create("Endpoint", EndpointFactory.build(status="sleeping"))
    assert caught.value.issues()[0]["code"] == "code-invalid"
    assert caught.value.issues()[0]["expression"] == ["Endpoint.status"]


def test_wrong_resource_type_is_a_bad_request():
    with pytest.raises(InvalidRequest):
        storage.create("Organization", PractitionerFactory.build())


def test_bulk_load_checks_references_across_batches_and_indexes():
    items = [("Organization", OrganizationFactory.build(id=f"bulk-{i}")) for i in range(5)]
    items += [
        (
            "PractitionerRole",
            PractitionerRoleFactory.build(
                id=f"bulk-role-{i}", organization={"reference": f"Organization/bulk-{i}"}
            ),
        )
        for i in range(5)
    ]
    assert bulkload.bulk_load(items, batch_size=3) == 10
    assert ReferenceIndex.objects.filter(param="organization", target_id="bulk-4").count() == 1
    assert ResourceVersion.objects.filter(logical_id__startswith="bulk-").count() == 10


def test_bulk_load_refuses_dangling_reference():
    items = [
        (
            "PractitionerRole",
            PractitionerRoleFactory.build(organization={"reference": "Organization/absent"}),
        )
    ]
    with pytest.raises(UnprocessableReference):
        bulkload.bulk_load(items)
    assert not Resource.objects.filter(resource_type="PractitionerRole").exists()


def test_history_pages_newest_first_without_gaps():
    org = OrganizationFactory.create()
    for i in range(4):
        org["name"] = f"Name {i}"
        storage.update("Organization", org["id"], org)
    seen, before = [], None
    while True:
        page, more = storage.history_page(
            resource_type="Organization", logical_id=org["id"], before=before, count=2
        )
        seen += [v.version_id for v in page]
        if not more:
            break
        before = page[-1].id
    assert seen == [5, 4, 3, 2, 1]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_create_on_update_of_one_id_yields_one_resource():
    if connection.vendor == "sqlite":
        # The in-memory test database is shared-cache: a writer meeting another fails at once
        # whatever the transaction mode. test_sqlite_writers.py races writers on a file.
        pytest.skip("SQLite's in-memory test database cannot queue writers")
    errors, results = [], []

    def writer():
        try:
            results.append(
                storage.update("Practitioner", "race-1", PractitionerFactory.build(id="race-1"))
            )
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Resource.objects.filter(logical_id="race-1").count() == 1
    versions = sorted(
        ResourceVersion.objects.filter(logical_id="race-1").values_list("version_id", flat=True)
    )
    assert versions == list(range(1, len(versions) + 1))
    assert all(isinstance(e, Conflict) for e in errors), errors
    assert len(results) + len(errors) == 4 and results
