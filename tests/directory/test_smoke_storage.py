import pytest

from directory import storage
from directory.errors import Gone, PreconditionFailed, UnprocessableReference
from tests.factories import OrganizationFactory, PractitionerRoleFactory

pytestmark = pytest.mark.django_db


def test_create_update_delete_keeps_versions():
    org = OrganizationFactory.create()
    assert org["meta"]["versionId"] == "1"
    org["name"] = "Renamed"
    result = storage.update("Organization", org["id"], org, if_match='W/"1"')
    assert result.content["meta"]["versionId"] == "2" and not result.created
    with pytest.raises(PreconditionFailed):
        storage.update("Organization", org["id"], org, if_match='W/"1"')
    assert storage.delete("Organization", org["id"]) is True
    with pytest.raises(Gone):
        storage.read("Organization", org["id"])
    page, more = storage.history_page(resource_type="Organization", logical_id=org["id"])
    assert [v.version_id for v in page] == [3, 2, 1] and not more


def test_reference_must_resolve():
    with pytest.raises(UnprocessableReference):
        PractitionerRoleFactory.create(organization={"reference": "Organization/missing"})
