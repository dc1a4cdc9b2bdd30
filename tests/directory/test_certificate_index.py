"""Endpoint certificates in the search index: what is filed, that writes keep it current, and that
security's questions are indexed queries answered through security.directory_port."""

import base64
import importlib
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from django.apps import apps
from django.db import connection

from directory import bulkload, storage
from directory.admin_certificates import DIGITAL_CERTIFICATE_URL
from directory.certificate_index import (
    CERTIFICATE_PARAM,
    EXPIRATION_PARAM,
    certificate_expiries,
    certificate_rows,
    expiry_rows,
    rows,
)
from directory.models import DateIndex, TokenIndex
from security.directory_port import directory
from tests.factories import EndpointFactory, OrganizationFactory
from tests.security.pki import make_root

NOW = datetime.now(UTC)
UNREADABLE_CERTIFICATE = {"url": "certificate", "valueString": "bm9wZQ=="}


def make_certificate(name: str = "ep.example.org") -> x509.Certificate:
    return make_root(name).cert


def sha256_hex(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def certificate_extension(cert=None, *expiration_dates, url=DIGITAL_CERTIFICATE_URL) -> dict:
    subs = [{"url": "expirationDate", "valueDate": value} for value in expiration_dates]
    if cert is not None:
        der = cert.public_bytes(serialization.Encoding.DER)
        subs.append({"url": "certificate", "valueString": base64.b64encode(der).decode()})
    return {"url": url, "extension": subs}


def endpoint(*extensions) -> dict:
    return {"resourceType": "Endpoint", "extension": list(extensions)}


def expiries_of(content) -> list[datetime]:
    return [values[0] for table, param, values in rows("Endpoint", content) if table is DateIndex]


# ---------------------------------------------------------------------------- what is filed
# (These cases were security/expiry.py's when it read the Endpoint JSON itself.)


def test_every_digital_certificate_expiry_of_an_endpoint_is_filed():
    content = endpoint(
        certificate_extension(None, "2026-08-01"), certificate_extension(None, "2027-01-31")
    )
    assert sorted(expiries_of(content)) == [
        datetime(2026, 8, 1, tzinfo=UTC),
        datetime(2027, 1, 31, tzinfo=UTC),
    ]


def test_partial_dates_are_filed_from_their_earliest_day():
    content = endpoint(certificate_extension(None, "2026-09"), certificate_extension(None, "2027"))
    assert sorted(expiries_of(content)) == [
        datetime(2026, 9, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    "content",
    [
        None,
        [],
        "text",
        {"extension": "oops"},
        {"extension": [None, 3, {"url": DIGITAL_CERTIFICATE_URL}]},
        {"extension": [{"url": DIGITAL_CERTIFICATE_URL, "extension": {}}]},
        endpoint(certificate_extension(None, "2026-13-01", "tomorrow", "2026-02-30", 20260801)),
        endpoint(certificate_extension(None, "2026-08-01", url="http://example.org/other")),
        endpoint(
            {
                "url": DIGITAL_CERTIFICATE_URL,
                "extension": [{"url": "certificate", "valueString": "bm9wZQ=="}],
            }
        ),
    ],
)
def test_malformed_extensions_file_nothing_rather_than_failing(content):
    assert list(rows("Endpoint", content)) == []


def test_a_non_string_date_is_skipped():
    content = endpoint(certificate_extension(None, 20260801, "2026-08-02"))
    assert expiries_of(content) == [datetime(2026, 8, 2, tzinfo=UTC)]


def test_the_certificate_is_filed_by_its_canonical_fingerprint():
    cert = make_certificate()
    found = list(rows("Endpoint", endpoint(certificate_extension(cert))))
    assert found == [(TokenIndex, CERTIFICATE_PARAM, ("", sha256_hex(cert)))]


def test_only_endpoints_are_filed():
    content = {
        "resourceType": "Organization",
        "extension": [certificate_extension(make_certificate(), "2027")],
    }
    assert list(rows("Organization", content)) == []


# ---------------------------------------------------------------------------- kept by writes


def store_endpoint(*extensions, logical_id="ep-cert") -> dict:
    return EndpointFactory(id=logical_id, extension=list(extensions))


@pytest.mark.django_db
def test_a_write_files_an_update_replaces_and_a_delete_removes():
    first, second = make_certificate("one.example.org"), make_certificate("two.example.org")
    store_endpoint(certificate_extension(first, "2027-03-01"))
    assert directory().endpoints_with_certificate(sha256_hex(first)) == ["ep-cert"]

    store_endpoint(certificate_extension(second, "2027-06-01"))
    assert directory().endpoints_with_certificate(sha256_hex(first)) == []
    assert directory().endpoints_with_certificate(sha256_hex(second)) == ["ep-cert"]
    horizon = datetime(2028, 1, 1, tzinfo=UTC)
    assert list(directory().endpoint_certificate_expiries(None, horizon)) == [
        ("ep-cert", datetime(2027, 6, 1, tzinfo=UTC))
    ]

    storage.delete("Endpoint", "ep-cert")
    assert directory().endpoints_with_certificate(sha256_hex(second)) == []
    assert list(directory().endpoint_certificate_expiries(None, horizon)) == []


@pytest.mark.django_db
def test_a_bulk_load_files_the_certificates_too():
    cert = make_certificate()
    content = EndpointFactory.build(id="ep-bulk", extension=[certificate_extension(cert, "2027")])
    assert bulkload.bulk_load([("Endpoint", content)]) == 1
    assert directory().endpoints_with_certificate(sha256_hex(cert)) == ["ep-bulk"]


@pytest.mark.django_db
def test_expiries_are_answered_for_a_window():
    store_endpoint(certificate_extension(None, "2027-01-10"), logical_id="ep-a")
    store_endpoint(certificate_extension(None, "2027-05-10"), logical_id="ep-b")
    OrganizationFactory(extension=[certificate_extension(None, "2027-01-11")])
    start, end = datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC)
    assert list(certificate_expiries(start, end)) == [("ep-a", datetime(2027, 1, 10, tzinfo=UTC))]
    assert [lid for lid, _ in certificate_expiries(None, end)] == ["ep-a"]


@pytest.mark.django_db
def test_endpoints_stored_before_the_index_are_filed_by_the_migration():
    cert = make_certificate()
    store_endpoint(certificate_extension(cert, "2027-03-01"))
    # As stored before this change: no certificate rows.
    TokenIndex.objects.filter(param=CERTIFICATE_PARAM).delete()
    DateIndex.objects.filter(param=EXPIRATION_PARAM).delete()
    assert directory().endpoints_with_certificate(sha256_hex(cert)) == []

    migration = importlib.import_module("directory.migrations.0019_endpoint_certificate_index")
    # The function reads only the editor's connection; a real editor cannot open inside a test's
    # transaction on SQLite.
    migration.index_endpoint_certificates(apps, SimpleNamespace(connection=connection))
    assert directory().endpoints_with_certificate(sha256_hex(cert)) == ["ep-cert"]


# ---------------------------------------------------------------------------- indexed queries


def query_plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A near-empty table is scanned whatever its indexes; ask whether one can answer.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return " ".join(str(column) for row in cursor.fetchall() for column in row)


def assert_index_search(plan: str, table: str) -> None:
    """The plan reads `table` through one of its indexes, not by a full scan."""
    if connection.vendor == "postgresql":
        assert "Index Scan using" in plan or "Index Only Scan" in plan, plan
        assert "Seq Scan" not in plan, plan
    else:
        assert f"SEARCH {table} USING" in plan and "INDEX" in plan, plan


@pytest.mark.django_db
def test_finding_an_endpoint_by_certificate_or_by_expiry_uses_an_index():
    store_endpoint(certificate_extension(make_certificate(), "2027-03-01"))
    assert_index_search(query_plan(certificate_rows("ab" * 32)), "directory_tokenindex")
    assert_index_search(query_plan(expiry_rows(None, NOW)), "directory_dateindex")
    window = expiry_rows(NOW - timedelta(days=30), NOW)
    assert_index_search(query_plan(window), "directory_dateindex")
