"""Directory admin permissions: no directory permission means 403; view-only cannot write."""

import json

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from directory.models import Resource
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db

MODELS = ["organization", "practitioner", "practitionerrole", "location", "endpoint"]


def staff_client(client, *codenames):
    user = User.objects.create_user("staff", password="unused-pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


@pytest.fixture
def org():
    content = OrganizationFactory(name="Harbor Clinic")
    return Resource.objects.get(resource_type="Organization", logical_id=content["id"])


def urls(model: str, pk: int) -> list[str]:
    name = f"admin:directory_{model}record"
    return [
        reverse(f"{name}_changelist"),
        reverse(f"{name}_add"),
        reverse(f"{name}_change", args=[pk]),
        reverse(f"{name}_delete", args=[pk]),
        reverse(f"{name}_history", args=[pk]),
        # The derived form's JSON endpoints (reference lookup, identifier check).
        reverse(f"{name}_lookup") + "?q=Harbor",
        reverse(f"{name}_check_identifier") + "?value=1234567893",
    ]


def test_staff_without_directory_permissions_gets_403_everywhere(client, org):
    staff = staff_client(client)
    for model in MODELS:
        for address in urls(model, org.pk):
            response = staff.get(address)
            assert response.status_code == 403, address
            assert response["Cache-Control"] == "no-store"
    content = {"resourceType": "Organization", "name": "Sneaky"}
    post = staff.post(urls("organization", org.pk)[1], {"content_json": json.dumps(content)})
    assert post.status_code == 403
    deleted = staff.post(urls("organization", org.pk)[3], {"post": "yes"})
    assert deleted.status_code == 403
    assert Resource.objects.filter(resource_type="Organization", deleted=False).count() == 1


def test_view_only_staff_reads_but_cannot_write(client, org):
    staff = staff_client(client, "view_organizationrecord")
    changelist, add, change, delete, history, lookup, _ = urls("organization", org.pk)
    assert staff.get(changelist).status_code == 200
    assert staff.get(history).status_code == 200
    page = staff.get(change)
    assert page.status_code == 200
    assert "Harbor Clinic" in page.content.decode()
    assert 'name="content_json"' not in page.content.decode()
    assert 'name="f.' not in page.content.decode()  # nor the derived form's inputs
    assert staff.get(lookup).json()["results"][0]["display"] == "Harbor Clinic"
    assert staff.get(add).status_code == 403
    assert staff.get(delete).status_code == 403
    content = {**json.loads(org.content), "name": "Renamed"}
    edit = staff.post(change, {"content_json": json.dumps(content), "version": 1})
    assert edit.status_code == 403
    form = staff.post(change, {"editor": "form", "f.name.0": "Renamed", "version": 1})
    assert form.status_code == 403
    org.refresh_from_db()
    assert org.version_id == 1
    # View permission on one type opens that type only.
    assert staff.get(urls("practitioner", org.pk)[0]).status_code == 403


def test_change_permission_allows_edit_but_not_delete(client, org):
    staff = staff_client(client, "view_organizationrecord", "change_organizationrecord")
    _, add, change, delete, *_ = urls("organization", org.pk)
    content = {**json.loads(org.content), "name": "Renamed"}
    edit = staff.post(change, {"content_json": json.dumps(content), "version": 1})
    assert edit.status_code == 302
    org.refresh_from_db()
    assert org.version_id == 2
    assert staff.get(add).status_code == 403
    assert staff.post(delete, {"post": "yes"}).status_code == 403
