"""Directory admin: list, search, filters, create, edit, history and delete through storage."""

import json

import pytest
from django.contrib.admin.models import LogEntry
from django.forms import modelform_factory
from django.urls import reverse

from directory import storage
from directory.admin_forms import ResourceForm
from directory.admin_models import OrganizationRecord
from directory.formats import instant
from directory.models import Resource, ResourceVersion
from tests.factories import (
    NPI_SYSTEM,
    EndpointFactory,
    GroupFactory,
    HealthcareServiceFactory,
    InsurancePlanFactory,
    LocationFactory,
    OrganizationAffiliationFactory,
    OrganizationFactory,
    PractitionerFactory,
    PractitionerRoleFactory,
)

pytestmark = pytest.mark.django_db


def url(model: str, view: str, *args) -> str:
    return reverse(f"admin:directory_{model}record_{view}", args=args)


def row_of(resource_type: str, logical_id: str) -> Resource:
    return Resource.objects.get(resource_type=resource_type, logical_id=logical_id)


def text(response) -> str:
    return response.content.decode()


@pytest.fixture
def directory():
    """Two organizations, practitioners, a role, locations and endpoints to find and filter."""
    harbor = OrganizationFactory(
        name="Harbor Clinic",
        address=[{"city": "Portland", "state": "ME"}],
        type=[{"coding": [{"code": "dept"}]}],
    )
    OrganizationFactory(name="Summit Hospital", active=False)
    muller = PractitionerFactory(
        name=[{"family": "Müller", "given": ["Anna"]}],
        identifier=[{"system": NPI_SYSTEM, "value": "1234567893"}],
    )
    PractitionerFactory(name=[{"family": "Okafor", "given": ["Chidi"]}])
    PractitionerRoleFactory(
        practitioner={"reference": f"Practitioner/{muller['id']}"},
        organization={"reference": f"Organization/{harbor['id']}"},
    )
    LocationFactory(name="North Wing", status="suspended")
    LocationFactory(name="South Wing")
    EndpointFactory(name="Harbor FHIR", status="off")
    EndpointFactory(name="Summit FHIR")
    return {"harbor": harbor, "muller": muller}


def test_changelists_list_every_type_with_json_columns_and_no_store(admin_client, directory):
    for model, expected in [
        ("organization", ["Harbor Clinic", "Portland, ME", "Summit Hospital", "inactive"]),
        ("practitioner", ["Anna Müller", "1234567893", "Chidi Okafor"]),
        ("practitionerrole", ["Internal Medicine", f"Practitioner/{directory['muller']['id']}"]),
        ("location", ["North Wing", "suspended", "Cambridge, MA"]),
        ("endpoint", ["Harbor FHIR", "off", "hl7-fhir-rest"]),
    ]:
        response = admin_client.get(url(model, "changelist"))
        assert response.status_code == 200
        assert response["Cache-Control"] == "no-store"
        for value in expected:
            assert value in text(response), (model, value)


def test_deleted_resources_are_not_listed(admin_client, directory):
    OrganizationFactory(id="gone-org", name="Closed Practice")
    storage.delete("Organization", "gone-org")
    response = admin_client.get(url("organization", "changelist"))
    assert "Closed Practice" not in text(response)
    assert "Harbor Clinic" in text(response)


@pytest.mark.parametrize(
    ("model", "term", "found", "not_found"),
    [
        ("organization", "harb", "Harbor Clinic", "Summit Hospital"),
        ("organization", "portland", "Harbor Clinic", "Summit Hospital"),
        ("practitioner", "muller", "Anna Müller", "Chidi Okafor"),
        ("practitioner", "anna müller", "Anna Müller", "Chidi Okafor"),
        ("practitioner", "1234567893", "Anna Müller", "Chidi Okafor"),
        ("practitionerrole", "harbor", "Internal Medicine", "nothing-else"),
        ("location", "north", "North Wing", "South Wing"),
        ("endpoint", "summit", "Summit FHIR", "Harbor FHIR"),
    ],
)
def test_search_by_name_city_and_npi(admin_client, directory, model, term, found, not_found):
    response = admin_client.get(url(model, "changelist"), {"q": term})
    assert response.status_code == 200
    assert found in text(response)
    assert not_found not in text(response)


def test_search_without_match_lists_nothing(admin_client, directory):
    response = admin_client.get(url("practitioner", "changelist"), {"q": "9999999999"})
    assert "0 results" in text(response)


@pytest.mark.parametrize(
    ("model", "params", "found", "not_found"),
    [
        ("organization", {"active": "false"}, "Summit Hospital", "Harbor Clinic"),
        ("organization", {"address_state": "ME"}, "Harbor Clinic", "Summit Hospital"),
        ("organization", {"type": "dept"}, "Harbor Clinic", "Summit Hospital"),
        ("location", {"status": "suspended"}, "North Wing", "South Wing"),
        ("endpoint", {"status": "off"}, "Harbor FHIR", "Summit FHIR"),
        ("practitioner", {"active": "true"}, "Chidi Okafor", "nobody"),
    ],
)
def test_list_filters_from_index_tables(admin_client, directory, model, params, found, not_found):
    response = admin_client.get(url(model, "changelist"), params)
    assert response.status_code == 200
    assert found in text(response)
    assert not_found not in text(response)


def test_filter_sidebar_offers_codes_present(admin_client, directory):
    response = admin_client.get(url("organization", "changelist"))
    assert "?type=dept" in text(response)
    assert "?address_state=ME" in text(response)


def test_add_form_is_prefilled_with_a_template(admin_client):
    response = admin_client.get(url("organization", "add"))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert "&quot;resourceType&quot;: &quot;Organization&quot;" in text(response)


def test_create_valid_resource_goes_through_storage(admin_client):
    content = {"resourceType": "Organization", "name": "Bay Medical", "active": True}
    response = admin_client.post(url("organization", "add"), {"content_json": json.dumps(content)})
    assert response.status_code == 302
    row = Resource.objects.get(resource_type="Organization", sort_name="bay medical")
    assert row.version_id == 1
    assert ResourceVersion.objects.filter(resource=row, method="POST").count() == 1
    assert storage.read("Organization", row.logical_id).content == row.content


def test_create_invalid_resource_shows_issue_and_stores_nothing(admin_client):
    content = {"resourceType": "Location", "name": "Annex", "status": "closed"}
    response = admin_client.post(url("location", "add"), {"content_json": json.dumps(content)})
    assert response.status_code == 200
    assert "Location.status" in text(response)
    assert "&#x27;closed&#x27; is not in the required value set" in text(response)
    assert not Resource.objects.filter(resource_type="Location").exists()


def test_create_with_unknown_element_and_bad_json(admin_client):
    unknown = {"resourceType": "Organization", "name": "X", "colour": "red"}
    response = admin_client.post(url("organization", "add"), {"content_json": json.dumps(unknown)})
    assert "Organization.colour: Unknown element" in text(response)
    response = admin_client.post(url("organization", "add"), {"content_json": "{not json"})
    assert "not valid JSON" in text(response)
    assert not Resource.objects.exists()


def test_create_with_dangling_reference_is_refused(admin_client):
    content = {"resourceType": "PractitionerRole", "practitioner": {"reference": "Practitioner/no"}}
    response = admin_client.post(
        url("practitionerrole", "add"), {"content_json": json.dumps(content)}
    )
    assert response.status_code == 200
    assert "Referenced resource does not exist: Practitioner/no" in text(response)
    assert not Resource.objects.exists()


def test_change_form_shows_pretty_json_and_summary(admin_client, directory):
    row = row_of("Practitioner", directory["muller"]["id"])
    response = admin_client.get(url("practitioner", "change", row.pk))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = text(response)
    assert "Anna Müller" in body
    assert f"{NPI_SYSTEM}|1234567893" in body
    assert "\n  &quot;resourceType&quot;: &quot;Practitioner&quot;" in body
    assert url("practitioner", "history", row.pk) in body


def _edit(client, model, row, content, version=None):
    return client.post(
        url(model, "change", row.pk),
        {"content_json": json.dumps(content), "version": version or row.version_id},
    )


def test_edit_with_validation_error_names_element_and_changes_nothing(admin_client, directory):
    row = row_of("Organization", directory["harbor"]["id"])
    before = row.content
    content = {**directory["harbor"], "telecom": [{"system": "pigeon", "value": "x"}]}
    response = _edit(admin_client, "organization", row, content)
    assert response.status_code == 200
    assert "Organization.telecom[0].system" in text(response)
    row.refresh_from_db()
    assert row.content == before
    assert row.version_id == 1


def test_edit_success_writes_a_new_version(admin_client, directory):
    row = row_of("Organization", directory["harbor"]["id"])
    content = {**directory["harbor"], "name": "Harbor Clinic East"}
    response = _edit(admin_client, "organization", row, content)
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.version_id == 2
    assert json.loads(row.content)["name"] == "Harbor Clinic East"
    assert ResourceVersion.objects.filter(resource=row).count() == 2
    found = admin_client.get(url("organization", "changelist"), {"q": "harbor clinic east"})
    assert "Harbor Clinic East" in text(found)


def test_edit_over_a_newer_version_is_refused(admin_client, directory):
    row = row_of("Organization", directory["harbor"]["id"])
    storage.update("Organization", row.logical_id, {**directory["harbor"], "name": "Elsewhere"})
    content = {**directory["harbor"], "name": "Mine"}
    response = _edit(admin_client, "organization", row, content, version=1)
    assert response.status_code == 200
    assert "is at version 2, not 1" in text(response)
    row.refresh_from_db()
    assert json.loads(row.content)["name"] == "Elsewhere"


def test_the_form_checks_without_writing():
    """The write is the admin's save_model, once; validating the form stores nothing."""
    form_class = modelform_factory(OrganizationRecord, form=ResourceForm, fields=())
    content = {"resourceType": "Organization", "name": "Bay Medical"}
    form = form_class(data={"content_json": json.dumps(content)}, instance=OrganizationRecord())
    assert form.is_valid(), form.errors
    assert form.content == content
    assert not Resource.objects.exists()


def test_admin_and_api_writes_leave_the_same_versions(admin_client, directory):
    """Created and edited in the admin, or through storage as the API does: the same history."""
    content = {"resourceType": "Organization", "name": "Bay Medical", "active": True}
    admin_client.post(url("organization", "add"), {"content_json": json.dumps(content)})
    by_admin = Resource.objects.get(resource_type="Organization", sort_name="bay medical")
    edited = {**json.loads(by_admin.content), "name": "Bay Medical Center"}
    _edit(admin_client, "organization", by_admin, edited)
    by_api = storage.create("Organization", content).row
    storage.update(
        "Organization",
        by_api.logical_id,
        {**edited, "id": by_api.logical_id},
        if_match=str(by_api.version_id),
    )

    def history(row):
        versions = ResourceVersion.objects.filter(resource=row).order_by("version_id")
        return [
            (v.version_id, v.method, _without_meta_and_id(json.loads(v.content))) for v in versions
        ]

    assert history(by_admin) == history(by_api)
    assert [v for v, _, _ in history(by_admin)] == [1, 2]
    logged = LogEntry.objects.filter(object_id=str(by_admin.pk)).order_by("action_time")
    assert [e.change_message for e in logged] == [
        "Created as version 1 through the admin.",
        "Saved as version 2 through the admin.",
    ]


def _without_meta_and_id(content: dict) -> dict:
    return {k: v for k, v in content.items() if k not in ("meta", "id")}


def test_a_write_raced_after_the_form_checks_is_a_form_error(admin_client, directory, monkeypatch):
    """Another administrator's save commits between this form's checks and its write: the write is
    refused and undone, and the form shows why; the other save stands."""
    row = row_of("Organization", directory["harbor"]["id"])
    storage.update("Organization", row.logical_id, {**directory["harbor"], "name": "Elsewhere"})
    real_check, checks = storage.check_write, []

    def checked_before_the_other_save(*args, **kwargs):
        checks.append(kwargs["if_match"])
        if len(checks) == 1:
            kwargs["if_match"] = None  # as checked just before the other save committed
        return real_check(*args, **kwargs)

    monkeypatch.setattr(storage, "check_write", checked_before_the_other_save)
    response = _edit(admin_client, "organization", row, {**directory["harbor"], "name": "Mine"}, 1)
    assert response.status_code == 200
    assert "is at version 2, not 1" in text(response)
    assert checks == ["1", "1"]  # the version the editor started from, checked then written
    row.refresh_from_db()
    assert (row.version_id, json.loads(row.content)["name"]) == (2, "Elsewhere")
    assert ResourceVersion.objects.filter(resource=row).count() == 2
    assert not LogEntry.objects.exists()


def test_a_second_race_in_a_row_is_reported_not_written(admin_client, directory, monkeypatch):
    row = row_of("Organization", directory["harbor"]["id"])
    storage.update("Organization", row.logical_id, {**directory["harbor"], "name": "Elsewhere"})
    real_check = storage.check_write
    monkeypatch.setattr(
        storage, "check_write", lambda *a, **kw: real_check(*a, **{**kw, "if_match": None})
    )
    response = _edit(admin_client, "organization", row, {**directory["harbor"], "name": "Mine"}, 1)
    assert response.status_code == 302
    followed = admin_client.get(response["Location"])
    assert "Not saved: Organization/" in text(followed)
    row.refresh_from_db()
    assert (row.version_id, json.loads(row.content)["name"]) == (2, "Elsewhere")


def test_history_lists_every_version_with_json(admin_client, directory):
    logical_id = directory["harbor"]["id"]
    storage.update("Organization", logical_id, {**directory["harbor"], "name": "Second Name"})
    storage.update("Organization", logical_id, {**directory["harbor"], "name": "Third Name"})
    row = row_of("Organization", logical_id)
    response = admin_client.get(url("organization", "history", row.pk))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = text(response)
    assert body.count('<tr class="version">') == 3
    assert "Second Name" in body
    assert "Third Name" in body
    assert "create" in body
    assert "update" in body
    assert instant(row.last_updated) in body


def test_delete_goes_through_storage(admin_client, directory):
    row = row_of("Location", Resource.objects.get(sort_name="south wing").logical_id)
    confirm = admin_client.get(url("location", "delete", row.pk))
    assert confirm.status_code == 200
    assert confirm["Cache-Control"] == "no-store"
    response = admin_client.post(url("location", "delete", row.pk), {"post": "yes"})
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.deleted
    assert ResourceVersion.objects.filter(resource=row, method="DELETE").count() == 1


def test_delete_refused_while_referenced(admin_client, directory):
    row = row_of("Practitioner", directory["muller"]["id"])
    response = admin_client.post(
        url("practitioner", "delete", row.pk), {"post": "yes"}, follow=True
    )
    assert response.status_code == 200
    assert "Not deleted" in text(response)
    assert "still referenced by PractitionerRole/" in text(response)
    row.refresh_from_db()
    assert not row.deleted
    assert row.version_id == 1


def test_admin_index_lists_the_directory_types(admin_client):
    response = admin_client.get(reverse("admin:index"))
    body = text(response)
    for plural in (
        "Organizations",
        "Practitioners",
        "Practitioner roles",
        "Locations",
        "Endpoints",
        "Healthcare services",
        "Organization affiliations",
        "Insurance plans",
        "Groups",
    ):
        assert plural in body
    assert response["Cache-Control"] == "no-store"


def test_plan_net_types_have_changelists_and_add_templates(admin_client):
    org = OrganizationFactory(name="Acme Network")
    HealthcareServiceFactory(name="Walk-in Clinic")
    InsurancePlanFactory(name="Acme Gold")
    GroupFactory(name="Panel A")
    ref = {"reference": f"Organization/{org['id']}", "display": "Acme Network"}
    OrganizationAffiliationFactory(organization=ref, participatingOrganization=ref)
    for model, expected in [
        ("healthcareservice", "Walk-in Clinic"),
        ("insuranceplan", "Acme Gold"),
        ("group", "Panel A"),
        ("organizationaffiliation", "Acme Network in Acme Network"),
    ]:
        response = admin_client.get(url(model, "changelist"))
        assert response.status_code == 200
        assert expected in text(response), model
        assert admin_client.get(url(model, "add")).status_code == 200
    for row in Resource.objects.exclude(resource_type="Organization"):
        change = admin_client.get(url(row.resource_type.lower(), "change", row.pk))
        assert change.status_code == 200, row.resource_type
    found = admin_client.get(url("healthcareservice", "changelist"), {"q": "walk"})
    assert "Walk-in Clinic" in text(found)
