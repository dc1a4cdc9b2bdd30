"""What a read by id costs the database: one data query and the audit row, nothing more.

The whole security chain still runs (certificate, key, token, scope, audit); what it remembers
between requests (security caches) saves it queries, and the read itself is compiled once
(directory.storage.current_row). A regression here is a round trip added to every read.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from security.models import RequestAudit
from tests.factories import OrganizationFactory, PractitionerFactory

pytestmark = pytest.mark.django_db


def _statements(api, path: str) -> list[str]:
    api.get(path)  # the first request fills the caches (and notes the key's use)
    with CaptureQueriesContext(connection) as captured:
        response = api.get(path)
    assert response.status_code == 200, response.content
    return [query["sql"] for query in captured.captured_queries]


def test_read_by_id_is_one_data_query_and_one_audit_insert(api, settings):
    # The steady state: the trust snapshot and remembered answers are not due for a reload
    # between the two requests, however slow the machine (they are every SECURITY_CACHE_SECONDS).
    settings.SECURITY_CACHE_SECONDS = 3600
    practitioner = PractitionerFactory.create()
    statements = _statements(api, f"/fhir/Practitioner/{practitioner['id']}")
    assert len(statements) == 2, "\n".join(s[:120] for s in statements)
    read, audit = statements
    assert read.startswith("SELECT") and '"directory_resource"' in read
    assert audit.startswith("INSERT INTO") and '"security_requestaudit"' in audit
    row = RequestAudit.objects.latest("id")
    assert (row.interaction, row.resource_id, row.status) == ("read", practitioner["id"], 200)
    assert row.key_prefix and row.token_subject and row.certificate_fingerprint


def test_compiled_read_returns_what_the_orm_returns(api):
    from directory.models import Resource
    from directory.storage import current_row

    organization = OrganizationFactory.create()
    expected = Resource.objects.get(resource_type="Organization", logical_id=organization["id"])
    found = current_row("Organization", organization["id"])
    assert found is not None
    fields = [field.attname for field in Resource._meta.concrete_fields]
    assert [getattr(found, f) for f in fields] == [getattr(expected, f) for f in fields]
    assert found._state.db == expected._state.db and not found._state.adding
    # Same id, other type; and an id that does not exist.
    assert current_row("Practitioner", organization["id"]) is None
    assert current_row("Organization", "no-such-id") is None


def test_deleted_resource_still_answers_gone(api):
    practitioner = PractitionerFactory.create()
    path = f"/fhir/Practitioner/{practitioner['id']}"
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 410
