"""The admin's derived forms: fields from the StructureDefinition snapshots, the round trip
(form -> resource -> form keeps everything), and the change page over the Django client."""

from __future__ import annotations

import json
import re

import pytest
from django.http import QueryDict
from django.urls import reverse
from django.utils.http import urlencode

from directory import storage
from directory.admin_fields import apply, definition_for, form_fields, initial_values
from directory.models import Resource
from directory.profiles.definitions import definitions
from directory.registry import RESOURCE_TYPES, SUPPORTED_TYPES
from tests import plannet
from tests.factories import NPI_SYSTEM, OrganizationFactory, PractitionerFactory, make_npi

EXAMPLES = plannet.examples()
PLAN_NET = "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/"
NUCC = "http://nucc.org/provider-taxonomy"
ORG_TYPE = "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/OrgTypeCS"


def by_name(resource_type: str, resource: dict | None = None) -> dict:
    return {f.name: f for f in form_fields(resource_type, resource)}


def posted(values: dict[str, str]) -> QueryDict:
    query = QueryDict(mutable=True)
    for key, value in values.items():
        query[key] = value
    return query


# ---------------------------------------------------------------- derivation


def test_organization_fields_cardinalities_and_parts_come_from_the_r4_snapshot():
    fields = by_name("Organization")
    assert list(fields) == [
        "identifier", "active", "type", "name", "alias", "telecom", "address", "partOf",
        "endpoint",
    ]  # fmt: skip
    assert (fields["name"].min, fields["name"].max, fields["name"].type) == (0, 1, "string")
    assert fields["identifier"].repeats and fields["identifier"].is_list
    assert [p.name for p in fields["identifier"].parts] == ["use", "system", "value"]
    assert fields["partOf"].targets == ("Organization",)
    assert fields["endpoint"].targets == ("Endpoint",)
    telecom = {p.name: p for p in fields["telecom"].parts}
    # ContactPoint.system's required binding, expanded in the vendored value sets.
    assert {code for _, code in telecom["system"].codes} >= {"phone", "email", "url"}
    # Bookkeeping and elements the form cannot edit are not fields (so they are never touched).
    assert not {"id", "meta", "text", "extension", "contained", "contact"} & set(fields)


def test_reference_pickers_offer_the_types_validation_accepts():
    """Targets come from each element's targetProfile, as validation's do: InsurancePlan.network
    has no search parameter over it, but R4 lets it name an Organization only."""
    assert by_name("InsurancePlan")["network"].targets == ("Organization",)
    assert by_name("Group")["managingEntity"].targets == (
        "Organization",
        "Practitioner",
        "PractitionerRole",
    )


def test_a_claimed_plan_net_profile_narrows_cardinality_and_binds_nucc_specialties():
    role = next(e for e in EXAMPLES if e["resourceType"] == "PractitionerRole")
    assert definition_for("PractitionerRole", role).url == PLAN_NET + "plannet-PractitionerRole"
    fields = by_name("PractitionerRole", role)
    core = by_name("PractitionerRole")
    assert fields["active"].min == 1 and core["active"].min == 0
    specialty = {c for c in fields["specialty"].codes}
    assert (NUCC, "207Q00000X") in specialty  # Family Medicine
    assert not core["specialty"].codes  # R4 binds it preferred only: no picker


def test_every_directory_type_gets_a_form_without_special_cases():
    # Group is named nowhere in the form code: its form comes from its snapshot alone.
    fields = by_name("Group")
    assert fields["type"].min == 1 and {c for _, c in fields["type"].codes} >= {"practitioner"}
    assert fields["actual"].type == "boolean"
    assert fields["quantity"].type == "unsignedInt"
    for resource_type in SUPPORTED_TYPES:
        assert form_fields(resource_type), resource_type


def test_form_definition_follows_the_snapshot_when_a_profile_changes_it():
    # Unknown-to-the-code Plan-Net profiles are just definitions: Network is an Organization.
    network = next(e for e in EXAMPLES if e["id"] == "AcmeofCTStdNet")
    fields = by_name("Organization", network)
    assert definitions()[PLAN_NET + "plannet-Network"].type == "Organization"
    assert fields["type"].max == 1 and fields["type"].is_list  # profile max 1, JSON list


# ---------------------------------------------------------------- round trip


@pytest.mark.parametrize(
    "example",
    [e for e in EXAMPLES if e["resourceType"] in RESOURCE_TYPES],
    ids=lambda e: f"{e['resourceType']}/{e['id']}",
)
def test_every_plan_net_example_survives_form_and_back_unchanged(example):
    fields = form_fields(example["resourceType"], example)
    values = initial_values(fields, example)
    for field in fields:  # the blank row the page adds to every element
        values.setdefault(f"f.{field.name}.{len(values)}", "")
    assert apply(example["resourceType"], example, posted(values)) == example


def test_an_edit_changes_only_what_the_form_shows():
    stored = {
        "resourceType": "Organization",
        "id": "o1",
        "extension": [{"url": "http://example.org/x", "valueString": "kept"}],
        "identifier": [
            {"system": NPI_SYSTEM, "value": "1234567893", "period": {"start": "2020-01-01"}}
        ],
        "name": "Old",
        "contact": [{"name": {"text": "Front desk"}}],
        "type": [{"coding": [{"system": "s", "code": "a", "display": "A"}, {"code": "b"}]}],
    }
    values = initial_values(form_fields("Organization", stored), stored)
    values.update(
        {
            "f.name.0": "New name",
            "f.identifier.0.value": "1234567885",
            "f.telecom.0.system": "phone",
            "f.telecom.0.value": "555-0100",
            "f.type.0.coding": "s|c",
        }
    )
    out = apply("Organization", stored, posted(values))
    assert out["name"] == "New name"
    assert out["identifier"] == [
        {"system": NPI_SYSTEM, "value": "1234567885", "period": {"start": "2020-01-01"}}
    ]
    assert out["telecom"] == [{"system": "phone", "value": "555-0100"}]
    # A changed code replaces the first coding (its display was the old code's); others stay.
    assert out["type"] == [{"coding": [{"system": "s", "code": "c"}, {"code": "b"}]}]
    assert out["extension"] == stored["extension"] and out["contact"] == stored["contact"]

    values["f.identifier.0._remove"] = "1"
    values["f.name.0"] = ""
    out = apply("Organization", stored, posted(values))
    assert "identifier" not in out and "name" not in out


# ---------------------------------------------------------------- change page


def url(model: str, view: str, *args) -> str:
    return reverse(f"admin:directory_{model}record_{view}", args=args)


def stored(resource_type: str, logical_id: str) -> dict:
    return json.loads(storage.read(resource_type, logical_id).content)


@pytest.mark.django_db
def test_change_page_shows_the_form_and_the_json_tab(admin_client):
    harbor = OrganizationFactory(
        name="Harbor Clinic", identifier=[{"system": NPI_SYSTEM, "value": "1234567893"}]
    )
    pk = Resource.objects.get(logical_id=harbor["id"]).pk
    page = admin_client.get(url("organization", "change", pk)).content.decode()
    assert 'name="f.name.0" id="id_f.name.0" value="Harbor Clinic"' in page
    assert 'value="1234567893"' in page and "data-check-identifier" in page
    assert "Advanced (JSON)" in page and 'id="id_content_json"' in page
    assert "resource_form.js" in page and "<script>" not in page  # CSP: no inline script


@pytest.mark.django_db
def test_form_edit_saves_through_storage_and_keeps_unshown_elements(admin_client):
    harbor = OrganizationFactory(
        name="Harbor Clinic",
        extension=[{"url": "http://example.org/x", "valueString": "kept"}],
    )
    pk = Resource.objects.get(logical_id=harbor["id"]).pk
    form = {"editor": "form", "version": "1", "f.name.0": "Harbor Clinic East", "_save": "Save"}
    form |= {"f.active.0": "true", "f.identifier.0.system": NPI_SYSTEM}
    form |= {"f.identifier.0.value": make_npi(7)}
    response = admin_client.post(url("organization", "change", pk), form)
    assert response.status_code == 302, response.content.decode()[-3000:]
    after = stored("Organization", harbor["id"])
    assert after["name"] == "Harbor Clinic East"
    assert after["identifier"] == [{"system": NPI_SYSTEM, "value": make_npi(7)}]
    assert after["extension"] == harbor["extension"]
    assert after["meta"]["versionId"] == "2"


@pytest.mark.django_db
def test_bad_npi_is_refused_next_to_its_field_and_nothing_is_stored(admin_client):
    muller = PractitionerFactory(name=[{"family": "Müller", "given": ["Anna"]}])
    pk = Resource.objects.get(logical_id=muller["id"]).pk
    form = {"editor": "form", "version": "1", "f.name.0.family": "Müller", "_save": "Save"}
    form |= {"f.identifier.0.system": NPI_SYSTEM, "f.identifier.0.value": "1234567890"}
    response = admin_client.post(url("practitioner", "change", pk), form)
    assert response.status_code == 200
    page = response.content.decode()
    value_input = page.index('name="f.identifier.0.value"')
    error = page.index("not a valid NPI")
    # Next to the value: after its input, before any other input of the form.
    assert value_input < error < page.index('name="f.', value_input + 1)
    assert stored("Practitioner", muller["id"])["meta"]["versionId"] == "1"


@pytest.mark.django_db
def test_add_through_the_form_creates_a_practitioner(admin_client):
    form = {
        "editor": "form",
        "f.active.0": "true",
        "f.name.0.family": "Okafor",
        "f.name.0.given": "Chidi\nEmeka",
        "f.identifier.0.system": NPI_SYSTEM,
        "f.identifier.0.value": make_npi(11),
        "_save": "Save",
    }
    response = admin_client.post(url("practitioner", "add"), form)
    assert response.status_code == 302
    [row] = Resource.objects.filter(resource_type="Practitioner")
    content = stored("Practitioner", row.logical_id)
    assert content["name"] == [{"family": "Okafor", "given": ["Chidi", "Emeka"]}]
    assert content["active"] is True


@pytest.mark.django_db
def test_lookup_searches_the_directory_and_check_identifier_applies_the_npi_rule(admin_client):
    harbor = OrganizationFactory(name="Harbor Clinic")
    OrganizationFactory(name="Summit Hospital")
    answer = admin_client.get(url("organization", "lookup"), {"q": "harb"}).json()
    assert answer == {
        "results": [{"reference": f"Organization/{harbor['id']}", "display": "Harbor Clinic"}]
    }
    check = url("practitioner", "check_identifier")
    bad = admin_client.get(check, {"system": NPI_SYSTEM, "value": "1234567890"}).json()
    good = admin_client.get(check, {"system": NPI_SYSTEM, "value": "1234567893"}).json()
    assert bad["valid"] is False and "Luhn" in bad["message"]
    assert good == {"valid": True, "message": ""}


@pytest.mark.django_db
def test_lookup_needs_a_staff_session(client):
    response = client.get(url("organization", "lookup"), {"q": "harb"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_a_new_record_can_be_created_under_a_plan_net_profile_whose_rules_apply(admin_client):
    profile = PLAN_NET + "plannet-Organization"
    add = url("organization", "add") + "?" + urlencode({"profile": profile})
    page = admin_client.get(add).content.decode()
    assert "Create under:" in page and "<strong>plannet-Organization</strong>" in page
    # The profile makes name and active required (R4 leaves both optional).
    assert 'id="element-name"' in page and page.count('class="required-mark"') >= 2

    # R4's org-1 names the whole resource: listed above the form.
    response = admin_client.post(add, {"editor": "form", "f.active.0": "true", "_save": "Save"})
    page = response.content.decode()
    top = page[page.index("structured-unplaced") : page.index('id="element-identifier"')]
    assert "org-1" in top

    form = {"editor": "form", "f.active.0": "true", "_save": "Save"}
    form |= {"f.identifier.0.system": NPI_SYSTEM, "f.identifier.0.value": make_npi(5)}
    page = admin_client.post(add, form).content.decode()
    for element, after in [("type", "name"), ("name", "alias"), ("address", "partOf")]:
        block = page[page.index(f'id="element-{element}"') : page.index(f'id="element-{after}"')]
        assert f"Organization.{element}: minimum cardinality 1" in block, element
    assert not Resource.objects.filter(resource_type="Organization").exists()

    form |= {
        "f.name.0": "Harbor Clinic",
        "f.type.0.coding": ORG_TYPE + "|prvgrp",
        "f.address.0.city": "Portland",
    }
    response = admin_client.post(add, form)
    assert response.status_code == 302, response.content.decode()[-3000:]
    [row] = Resource.objects.filter(resource_type="Organization")
    assert stored("Organization", row.logical_id)["meta"]["profile"] == [profile]


@pytest.mark.django_db
def test_specialty_picker_offers_nucc_codes_with_their_names_and_writes_the_display(
    admin_client,
):
    profile = PLAN_NET + "plannet-PractitionerRole"
    add = url("practitionerrole", "add") + "?" + urlencode({"profile": profile})
    page = admin_client.get(add).content.decode()
    option = f'<option value="{NUCC}|207Q00000X">207Q00000X — Family Medicine Physician</option>'
    assert option in page
    assert 'list="codes-specialty-coding"' in page

    practitioner = PractitionerFactory()
    form = {
        "editor": "form",
        "f.active.0": "true",
        "f.practitioner.0.reference": f"Practitioner/{practitioner['id']}",
        "f.specialty.0.coding": f"{NUCC}|207Q00000X",
        "f.telecom.0.system": "phone",  # pd-1: contact information or an endpoint
        "f.telecom.0.value": "207-555-0100",
        "_save": "Save",
    }
    response = admin_client.post(add, form)
    assert response.status_code == 302, re.findall(r"<li>([^<]*)</li>", response.content.decode())
    [row] = Resource.objects.filter(resource_type="PractitionerRole")
    role = stored("PractitionerRole", row.logical_id)
    assert role["specialty"] == [
        {"coding": [{"system": NUCC, "code": "207Q00000X", "display": "Family Medicine Physician"}]}
    ]


@pytest.mark.django_db
def test_a_form_save_over_a_newer_version_is_refused(admin_client):
    harbor = OrganizationFactory(name="Harbor Clinic")
    pk = Resource.objects.get(logical_id=harbor["id"]).pk
    storage.update("Organization", harbor["id"], {**harbor, "name": "Harbor Clinic (renamed)"})
    form = {"editor": "form", "version": "1", "f.name.0": "Harbor Clinic East", "_save": "Save"}
    response = admin_client.post(url("organization", "change", pk), form)
    assert response.status_code == 200
    assert "structured-unplaced" in response.content.decode()
    assert stored("Organization", harbor["id"])["name"] == "Harbor Clinic (renamed)"


@pytest.mark.django_db
def test_an_npi_another_practitioner_holds_is_refused_at_that_identifier(admin_client, settings):
    settings.FHIR_UNIQUE_NPI = True
    npi = make_npi(21)
    PractitionerFactory(identifier=[{"system": NPI_SYSTEM, "value": npi}])
    form = {"editor": "form", "f.name.0.family": "Second", "_save": "Save"}
    form |= {"f.identifier.0.system": NPI_SYSTEM, "f.identifier.0.value": npi}
    response = admin_client.post(url("practitioner", "add"), form)
    page = response.content.decode()
    row = page[page.index('data-key="identifier.0"') : page.index('id="element-active"')]
    assert "already identifies another" in row
    assert Resource.objects.filter(resource_type="Practitioner").count() == 1


@pytest.mark.django_db
def test_a_type_the_form_code_never_names_is_edited_the_same_way(admin_client):
    # Location: its status picker is the R4 required binding, from the snapshot alone.
    from tests.factories import LocationFactory

    north = LocationFactory(name="North Wing", status="active")
    pk = Resource.objects.get(logical_id=north["id"]).pk
    page = admin_client.get(url("location", "change", pk)).content.decode()
    assert '<option value="suspended">suspended</option>' in page
    form = {"editor": "form", "version": "1", "f.status.0": "suspended", "_save": "Save"}
    form |= {"f.name.0": "North Wing", "f.address.0.city": "Bangor"}
    assert admin_client.post(url("location", "change", pk), form).status_code == 302
    after = stored("Location", north["id"])
    assert (after["status"], after["address"]["city"]) == ("suspended", "Bangor")
    assert after["address"]["line"] == north["address"]["line"]  # inputs not posted: as stored

    form["f.status.0"] = "closed-for-good"  # not in the value set: storage refuses it, there
    page = admin_client.post(url("location", "change", pk), form | {"version": "2"})
    block = page.content.decode()
    status = block[block.index('id="element-status"') :]
    assert status.index("errorlist") < status.index('id="element-operationalStatus"')


@pytest.mark.django_db
def test_every_registered_directory_admin_renders_its_derived_form(admin_client):
    # Whatever types are registered (more after issue 9's new types): each add page shows one
    # input block per derived field, with no per-type template or form code.
    from django.contrib import admin

    from directory.admin import ResourceAdmin

    admins = [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, ResourceAdmin) and model.RESOURCE_TYPE in SUPPORTED_TYPES
    ]
    assert len(admins) >= 5
    for model, model_admin in admins:
        page = admin_client.get(reverse(model_admin._url_name("add"))).content.decode()
        for field in form_fields(model.RESOURCE_TYPE):
            assert f'id="element-{field.name}"' in page, (model.RESOURCE_TYPE, field.name)


# ---------------------------------------------------------------- extensible-binding pickers


def test_plan_net_organization_type_offers_org_type_codes_but_leaves_validation_alone():
    org = next(e for e in EXAMPLES if e["resourceType"] == "Organization")
    type_ = by_name("Organization", org)["type"]
    assert {(ORG_TYPE, "prvgrp"), (ORG_TYPE, "payer")} <= set(type_.codes)
    assert type_.open_codes  # extensible: other codes are allowed
    assert not by_name("Organization")["type"].codes  # R4 binds it by example only
    element = definitions()[PLAN_NET + "plannet-Organization"].by_id["Organization.type"]
    assert element.binding is None and element.open_binding.endswith("/OrgTypeVS")


@pytest.mark.django_db
def test_extensible_picker_accepts_a_code_outside_its_set_and_required_one_refuses(
    admin_client,
):
    profile = PLAN_NET + "plannet-Organization"
    add = url("organization", "add") + "?" + urlencode({"profile": profile})
    page = admin_client.get(add).content.decode()
    # A free text input with a list of the value set's codes, not a closed select.
    assert 'name="f.type.0.coding" id="id_f.type.0.coding"' in page
    assert 'list="codes-type-coding"' in page
    assert f'<option value="{ORG_TYPE}|prvgrp">prvgrp — Provider Group</option>' in page

    form = {"editor": "form", "f.active.0": "true", "f.name.0": "Harbor Clinic", "_save": "Save"}
    form |= {"f.identifier.0.system": NPI_SYSTEM, "f.identifier.0.value": make_npi(5)}
    form |= {"f.address.0.city": "Portland", "f.type.0.coding": "http://example.org/t|clinic"}
    # Required binding (ContactPoint.system): a code outside the set is refused.
    bad = form | {"f.telecom.0.system": "pigeon", "f.telecom.0.value": "x"}
    response = admin_client.post(add, bad)
    assert response.status_code == 200
    assert "not in the required value set" in response.content.decode()
    assert not Resource.objects.filter(resource_type="Organization").exists()

    response = admin_client.post(add, form)
    assert response.status_code == 302, re.findall(r"<li>([^<]*)</li>", response.content.decode())
    [row] = Resource.objects.filter(resource_type="Organization")
    saved = stored("Organization", row.logical_id)
    assert saved["type"] == [{"coding": [{"system": "http://example.org/t", "code": "clinic"}]}]
