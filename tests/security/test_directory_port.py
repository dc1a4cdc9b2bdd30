"""security.directory_port: the directory registers its answers; without one, security refuses."""

import json

import pytest
from django.utils import timezone

from directory.models import Resource
from directory.registry import RESOURCE_TYPES
from security import directory_port, expiry, scopes


def test_the_directory_app_registered_its_resource_types():
    assert tuple(directory_port.directory().resource_types()) == RESOURCE_TYPES
    needed = scopes.required_grants("history-system", "")
    assert {resource_type for resource_type, _ in needed} == set(RESOURCE_TYPES)


def test_without_a_registered_directory_security_fails_loudly(monkeypatch):
    monkeypatch.setattr(directory_port, "_provider", None)
    with pytest.raises(RuntimeError):
        scopes.required_grants("read", "Organization")


def stored(resource_type, logical_id, content, deleted=False):
    return Resource.objects.create(
        resource_type=resource_type,
        logical_id=logical_id,
        version_id=1,
        last_updated=timezone.now(),
        deleted=deleted,
        content=json.dumps({"resourceType": resource_type, "id": logical_id, **content}),
    )


@pytest.mark.django_db
def test_endpoints_mentioning_reads_live_endpoints_that_mention_it_only():
    extension = {"extension": [{"url": expiry.DIGITAL_CERTIFICATE_URL}]}
    stored("Endpoint", "kept", extension)
    stored("Endpoint", "deleted", extension, deleted=True)
    stored("Endpoint", "plain", {"address": "https://example.org/fhir"})
    stored("Organization", "not-an-endpoint", extension)
    found = dict(directory_port.directory().endpoints_mentioning(expiry.DIGITAL_CERTIFICATE_URL))
    assert list(found) == ["kept"]
    assert json.loads(found["kept"])["extension"] == extension["extension"]
