"""Custom SearchParameters in the web admin: the same storage write and checks as the API."""

import json

import pytest
from django.urls import reverse

from directory import customparams, registry
from directory.models import Resource
from tests.customparams_support import ALIAS

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_custom_params")]

ADD = "admin:directory_searchparameterrecord_add"


def _add(client, content):
    return client.post(reverse(ADD), {"content_json": json.dumps(content)})


def test_add_form_offers_a_template_that_stores(admin_client):
    response = admin_client.get(reverse(ADD))
    assert response.status_code == 200
    assert "&quot;resourceType&quot;: &quot;SearchParameter&quot;" in response.content.decode()
    template = response.context["adminform"].form.initial["content_json"]
    assert _add(admin_client, json.loads(template)).status_code == 302


def test_admin_adds_a_custom_parameter_through_storage(admin_client):
    assert _add(admin_client, ALIAS).status_code == 302
    row = Resource.objects.get(resource_type="SearchParameter")
    assert json.loads(row.content)["code"] == "alias"
    customparams.ensure_fresh()
    assert "alias" in registry.RESOURCES["Organization"].params
    listing = admin_client.get(reverse("admin:directory_searchparameterrecord_changelist"))
    assert "reindex needed" in listing.content.decode()


def test_admin_shows_the_same_refusals_as_the_api(admin_client):
    response = _add(admin_client, {**ALIAS, "code": "name"})
    assert response.status_code == 200
    assert "built-in search parameter" in response.content.decode()
    response = _add(admin_client, {**ALIAS, "expression": "Organization.alias.where("})
    assert "SearchParameter.expression" in response.content.decode()
    assert not Resource.objects.filter(resource_type="SearchParameter").exists()
