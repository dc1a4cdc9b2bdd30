"""Every Plan-Net example stores with its own id through a transaction, and reads back equal."""

from __future__ import annotations

import pytest

from . import package

pytestmark = pytest.mark.django_db

EXAMPLE_KEYS = [package.key(r) for r in package.EXAMPLES]


def test_the_package_holds_49_examples_and_55_search_parameters():
    # The counts the issue names: a vendoring mistake would quietly shrink every test below.
    assert len(package.EXAMPLES) == 49
    assert len(package.PLAN_NET_PARAMS) == 55


def test_one_transaction_of_puts_stores_everything(conformance_data):
    load = conformance_data.load
    issues = load.transaction_body.get("issue") or [{}]
    assert load.transaction_status == 200, issues[0].get("diagnostics")
    assert load.stored == {key: 201 for key in package.RESOURCES}


@pytest.mark.parametrize("key", EXAMPLE_KEYS)
def test_example_reads_back_equal(server, conformance_data, key):
    response = server.get(f"/fhir/{key}")
    refused = conformance_data.load.refused.get(key, {}).get("issue") or [{}]
    assert response.status_code == 200, f"not stored: {refused[0].get('diagnostics')}"
    stored, original = response.json(), package.RESOURCES[key]
    assert stored["meta"]["versionId"] == "1"
    assert stored["meta"].get("profile") == original["meta"].get("profile")
    assert _without_meta(stored) == _without_meta(original)


def _without_meta(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if k != "meta"}
