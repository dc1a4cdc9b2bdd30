"""security.directory_port: the directory registers its answers; without one, security refuses."""

import pytest

from directory.registry import RESOURCE_TYPES
from security import directory_port, scopes


def test_the_directory_app_registered_its_resource_types():
    assert tuple(directory_port.directory().resource_types()) == RESOURCE_TYPES
    needed = scopes.required_grants("history-system", "")
    assert {resource_type for resource_type, _ in needed} == set(RESOURCE_TYPES)


def test_without_a_registered_directory_security_fails_loudly(monkeypatch):
    monkeypatch.setattr(directory_port, "_provider", None)
    with pytest.raises(RuntimeError):
        scopes.required_grants("read", "Organization")


# The port's Endpoint-certificate questions (live Endpoints only, indexed) are tested where the
# index is: tests/directory/test_certificate_index.py.
