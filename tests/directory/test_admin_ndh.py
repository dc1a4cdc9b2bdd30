"""The admin's derived forms under the NDH profiles: the IG's own examples survive form and back
unchanged, and a new record can be started under each NDH profile (its cardinalities shown)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils.http import urlencode

from directory.admin_fields import apply, form_fields, initial_values
from directory.profiles.definitions import definitions
from directory.registry import SUPPORTED_TYPES
from tests import ndh

from .test_admin_derived_forms import posted

EXAMPLES = ndh.examples()
NDH_PROFILES = sorted(url for url in definitions() if url.startswith(ndh.NDH + "ndh-"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"{e['resourceType']}/{e['id']}")
def test_every_ndh_example_survives_form_and_back_unchanged(example):
    fields = form_fields(example["resourceType"], example)
    values = initial_values(fields, example)
    for field in fields:  # the blank row the page adds to every element
        values.setdefault(f"f.{field.name}.{len(values)}", "")
    assert apply(example["resourceType"], example, posted(values)) == example


@pytest.mark.django_db
@pytest.mark.parametrize("profile", NDH_PROFILES, ids=lambda u: u.rsplit("/", 1)[-1])
def test_a_new_record_can_be_started_under_each_ndh_profile(admin_client, profile):
    resource_type = definitions()[profile].type
    assert resource_type in SUPPORTED_TYPES
    name = resource_type.lower()
    add = reverse(f"admin:directory_{name}record_add") + "?" + urlencode({"profile": profile})
    response = admin_client.get(add)
    assert response.status_code == 200
    page = response.content.decode()
    assert f"<strong>{profile.rsplit('/', 1)[-1]}</strong>" in page
    for field in form_fields(
        resource_type, {"resourceType": resource_type, "meta": {"profile": [profile]}}
    ):
        assert f'id="element-{field.name}"' in page, field.name


def test_an_alias_held_only_by_its_extensions_keeps_them_in_place():
    # NDH's Acme has an alias that is only extensions (alias type and period): "alias": [null],
    # "_alias": [{...}]. A second alias typed in goes after it; removing the first drops both.
    acme = ndh.example("Organization", "Acme")
    assert acme["alias"] == [None] and acme["_alias"][0]["extension"]
    fields = form_fields("Organization", acme)
    values = initial_values(fields, acme) | {"f.alias.1": "Acme Health"}
    added = apply("Organization", acme, posted(values))
    assert added["alias"] == [None, "Acme Health"]
    assert added["_alias"] == [acme["_alias"][0], None]
    removed = apply("Organization", added, posted(values | {"f.alias.0._remove": "on"}))
    assert removed["alias"] == ["Acme Health"] and "_alias" not in removed


def test_reference_pickers_under_an_ndh_profile_offer_its_narrower_targets():
    """ndh-Group narrows R4's Group.managingEntity (Organization, Practitioner, PractitionerRole)
    to Organization: the picker follows the profile the record claims, as validation does (the
    reference walk in test_profiles_references covers validation), and the IG's example fits it."""
    group = ndh.example("Group", "BehavioralHealthGroupAtBurrClinic")
    assert group["meta"]["profile"] == [ndh.NDH + "ndh-Group"]
    under_ndh = {f.name: f.targets for f in form_fields("Group", group)}
    plain = {f.name: f.targets for f in form_fields("Group", {"resourceType": "Group"})}
    assert under_ndh["managingEntity"] == ("Organization",)
    assert set(plain["managingEntity"]) == {"Organization", "Practitioner", "PractitionerRole"}
    assert group["managingEntity"]["reference"].split("/")[0] in under_ndh["managingEntity"]
