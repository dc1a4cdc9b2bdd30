"""Transaction and batch Bundles over a real socket, as a deployed client and an attacker send them.

Every request goes to the live server with the client's certificate from the test PKI (as the TLS
terminator passes it), its API key and a signed token (`fhir` in conftest.py). Each refusal is
checked as the wire carries it: status, an OperationOutcome as FHIR JSON, `Cache-Control:
no-store`, and nothing stored, seen both through a search over HTTP and in the database.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest
import requests
from django.conf import settings
from django.db import connection

from directory.models import Resource, ResourceVersion
from security.models import RequestAudit
from tests.factories import NPI_SYSTEM, make_npi

from .test_transactions import assert_outcome, bundle, call, org, post, statuses, stored_rows
from .test_transactions_together import practitioners_and_roles

pytestmark = pytest.mark.django_db(transaction=True)

JSON = "application/fhir+json"
PAIRS = 50  # 100 entries
TRIALS = 3  # of each race
ORGANIZATIONS_ONLY = "system/Organization.cruds"
CHANNEL = {
    "resourceType": "Subscription",
    "status": "requested",
    "reason": "Changes",
    "criteria": "Organization",
    "channel": {"type": "rest-hook", "endpoint": "https://127.0.0.1/hook"},
}
FORM = "application/x-www-form-urlencoded"
NAN = b'{"url": "http://example.org/x", "valueDecimal": NaN}'


def refused(response: requests.Response, status: int, code: str | None = None) -> dict:
    """The OperationOutcome of a refusal, checked as a client receives it."""
    assert response.headers["Content-Type"] == f"{JSON}; charset=utf-8", response.text[:300]
    assert response.headers["Cache-Control"] == "no-store"
    return assert_outcome(response, status, code)


def total(fhir, query: str) -> int:
    """How many resources a search over HTTP counts."""
    found = fhir("GET", f"{query}{'&' if '?' in query else '?'}_summary=count")
    assert found.status_code == 200, found.text
    return found.json()["total"]


def assert_nothing_stored(fhir, before: dict[str, int]) -> None:
    assert stored_rows() == before
    for resource_type in ("Organization", "Practitioner", "PractitionerRole"):
        assert total(fhir, resource_type) == 0


def practitioner(npi: str) -> dict:
    return {
        "resourceType": "Practitioner",
        "active": True,
        "identifier": [{"system": NPI_SYSTEM, "value": npi}],
        "name": [{"family": "Race"}],
    }


def practitioner_and_role(npi: str, urn: str) -> list[dict]:
    """Entries creating a Practitioner holding `npi` and a PractitionerRole naming its urn:uuid."""
    role = {"resourceType": "PractitionerRole", "practitioner": {"reference": urn}}
    return [post(practitioner(npi), urn), post(role)]


# ---------------------------------------------------------------- a large transaction


def test_a_hundred_entry_transaction_is_stored_whole_and_linked(fhir, live_server):
    response = fhir("POST", json=practitioners_and_roles(PAIRS))
    assert statuses(response) == ["201 Created"] * 2 * PAIRS
    assert response.headers["Cache-Control"] == "no-store"
    result = response.json()
    assert result["type"] == "transaction-response"

    base = f"{live_server.url}/fhir"
    moments = set()
    for n in range(PAIRS):
        practitioner, role = result["entry"][2 * n], result["entry"][2 * n + 1]
        for entry in (practitioner, role):
            resource = entry["resource"]
            kind, logical_id = resource["resourceType"], resource["id"]
            assert entry["fullUrl"] == f"{base}/{kind}/{logical_id}"
            assert entry["response"]["location"] == f"{kind}/{logical_id}/_history/1"
            assert entry["response"]["etag"] == 'W/"1"'
            moments |= {entry["response"]["lastModified"], resource["meta"]["lastUpdated"]}
        # Each role names the practitioner created from the urn:uuid it was sent with.
        assert role["resource"]["practitioner"] == {
            "reference": f"Practitioner/{practitioner['resource']['id']}"
        }
    assert len(moments) == 1
    assert ResourceVersion.objects.values("last_updated").distinct().count() == 1
    assert Resource.objects.count() == 2 * PAIRS
    assert not Resource.objects.filter(content__contains="urn:uuid").exists()

    # Each location answers as the version it names; the reference index serves searches.
    last = result["entry"][-2]["response"]["location"]
    read = fhir("GET", last)
    assert read.status_code == 200 and read.json() == result["entry"][-2]["resource"]
    assert total(fhir, "Practitioner") == PAIRS and total(fhir, "PractitionerRole") == PAIRS
    first = result["entry"][0]["resource"]["id"]
    chained = fhir("GET", f"PractitionerRole?practitioner.identifier={NPI_SYSTEM}|{make_npi(5000)}")
    assert [e["resource"]["practitioner"]["reference"] for e in chained.json()["entry"]] == [
        f"Practitioner/{first}"
    ]


# ---------------------------------------------------------------- all or nothing


def _last_entry_fails(last: dict) -> dict:
    transaction = practitioners_and_roles(PAIRS)
    transaction["entry"].append(last)
    return transaction


def test_one_bad_last_entry_refuses_a_hundred_good_ones(fhir):
    before = stored_rows()
    nameless = post({"resourceType": "Organization", "active": True})  # org-1
    body = refused(fhir("POST", json=_last_entry_fails(nameless)), 422)
    assert body["issue"][0]["expression"][0] == f"Bundle.entry[{2 * PAIRS}]"
    assert "org-1" in json.dumps(body)

    gone = {"resourceType": "PractitionerRole", "organization": {"reference": "Organization/gone"}}
    dangling = post(gone)
    body = refused(fhir("POST", json=_last_entry_fails(dangling)), 422, "processing")
    assert "Organization/gone" in body["issue"][0]["diagnostics"]

    # The first Practitioner's urn:uuid, where an Organization must be named.
    first = practitioners_and_roles(1)["entry"][0]["fullUrl"]
    wrong_type = {"resourceType": "PractitionerRole", "organization": {"reference": first}}
    body = refused(fhir("POST", json=_last_entry_fails(post(wrong_type))), 422)
    assert body["issue"][0]["expression"][0] == f"Bundle.entry[{2 * PAIRS}]"
    assert "Practitioner" in body["issue"][0]["diagnostics"]
    assert_nothing_stored(fhir, before)


# ---------------------------------------------------------------- authorization


def test_an_entry_beyond_the_token_refuses_the_transaction(fhir):
    before = stored_rows()
    entries = [
        post(org("Allowed")),
        *practitioner_and_role(make_npi(61), f"urn:uuid:{uuid.uuid4()}"),
    ]
    transaction = bundle("transaction", *entries)
    response = fhir("POST", json=transaction, scope=ORGANIZATIONS_ONLY)
    assert refused(response, 403, "forbidden")["issue"][0]["expression"] == ["Bundle.entry[1]"]
    response = fhir("POST", json=transaction, scope="system/*.rs")
    assert refused(response, 403, "forbidden")["issue"][0]["expression"] == ["Bundle.entry[0]"]

    # Reads ride along too: a GET entry must not read what the token may not.
    peek = call("GET", "Organization?_revinclude=PractitionerRole:organization")
    response = fhir(
        "POST", json=bundle("transaction", post(org("Allowed")), peek), scope=ORGANIZATIONS_ONLY
    )
    assert refused(response, 403, "forbidden")["issue"][0]["expression"] == ["Bundle.entry[1]"]
    # A Subscription is its client's own, created through its endpoint's checks only.
    refused(fhir("POST", json=bundle("transaction", post(CHANNEL))), 403, "forbidden")
    assert_nothing_stored(fhir, before)
    assert {a.status for a in RequestAudit.objects.filter(path="/fhir")} == {403}

    # In a batch only the refused entries are refused; the allowed one is stored.
    response = fhir("POST", json=bundle("batch", *entries), scope=ORGANIZATIONS_ONLY)
    assert response.json()["type"] == "batch-response"
    assert statuses(response) == ["201 Created", "403 Forbidden", "403 Forbidden"]
    assert sorted(Resource.objects.values_list("resource_type", flat=True)) == ["Organization"]


def test_another_clients_key_with_this_certificate_is_refused(fhir, other_credentials):
    before = stored_rows()
    transaction = bundle("transaction", post(org("Stolen Key Clinic")))
    response = fhir("POST", json=transaction, headers={"X-API-Key": other_credentials.api_key})
    refused(response, 401, "login")
    # And the other client's certificate with this client's key and token.
    response = fhir(
        "POST",
        json=transaction,
        headers={k: v for k, v in other_credentials.http.items() if k.startswith("X-SSL")},
    )
    refused(response, 401, "login")
    assert_nothing_stored(fhir, before)
    outcomes = RequestAudit.objects.filter(path="/fhir").values_list("outcome", flat=True)
    assert list(outcomes) == ["key-wrong-client", "key-wrong-client"]


# ---------------------------------------------------------------- concurrency


def race(sends: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """The responses to requests released together (each waits for all the others' threads)."""
    start = threading.Barrier(len(sends))

    def together(send: Callable[[], requests.Response]) -> requests.Response:
        start.wait(timeout=30)
        return send()

    with ThreadPoolExecutor(len(sends)) as pool:
        return list(pool.map(together, sends))


def claim(fhir, npi: str, *, if_none_exist: bool = False) -> requests.Response:
    """A transaction creating a Practitioner with `npi` and a role naming it."""
    entries = practitioner_and_role(npi, f"urn:uuid:{uuid.uuid4()}")
    if if_none_exist:
        entries[0]["request"]["ifNoneExist"] = f"identifier={NPI_SYSTEM}|{npi}"
    return fhir("POST", json=bundle("transaction", *entries))


def create_alone(fhir, npi: str) -> requests.Response:
    return fhir("POST", "Practitioner", json=practitioner(npi))


def roles_of(fhir, npi: str) -> tuple[str, list[str]]:
    """The one Practitioner holding `npi`, and what every stored role names."""
    holders = fhir("GET", f"Practitioner?identifier={NPI_SYSTEM}|{npi}").json()
    assert holders["total"] == 1, holders
    roles = fhir("GET", "PractitionerRole?_count=200").json().get("entry", [])
    named = [e["resource"]["practitioner"]["reference"] for e in roles]
    return f"Practitioner/{holders['entry'][0]['resource']['id']}", named


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite serializes writers: no race to lose"
)
def test_concurrent_transactions_claiming_one_npi_store_it_once(fhir, settings):
    """Racers on real sockets claim one NPI. Without If-None-Exist the unique-identifier rule
    lets one win and answers the others 409 `duplicate`, their roles not stored either; with it,
    one creates and the others' roles name the Practitioner it created."""
    settings.RATE_LIMIT_CONCURRENT = 0  # one client racing itself; the limits are tested alone
    roles = 0
    for trial in range(TRIALS):
        npi = make_npi(7700 + trial)
        answers = race(
            [partial(claim, fhir, npi), partial(claim, fhir, npi), partial(create_alone, fhir, npi)]
        )
        codes = sorted(r.status_code for r in answers)
        assert codes in ([200, 409, 409], [201, 409, 409]), f"trial {trial}: {codes}"
        for response in answers:
            if response.status_code == 409:
                assert npi in refused(response, 409, "duplicate")["issue"][0]["diagnostics"]
        roles += codes[0] == 200
        holder, named = roles_of(fhir, npi)
        assert len(named) == roles and (holder in named) == (codes[0] == 200)

    for trial in range(TRIALS):
        npi = make_npi(7800 + trial)
        answers = race([partial(claim, fhir, npi, if_none_exist=True) for _ in range(3)])
        firsts = sorted(statuses(r)[0] for r in answers)
        assert firsts == ["200 OK", "200 OK", "201 Created"], f"trial {trial}: {firsts}"
        roles += 3
        holder, named = roles_of(fhir, npi)
        assert len(named) == roles and named.count(holder) == 3
    assert Resource.objects.filter(resource_type="Practitioner").count() == 2 * TRIALS


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite serializes writers: no race to lose"
)
def test_a_delete_racing_new_references_leaves_none_dangling(fhir, settings):
    """A transaction deleting an Organization races a transaction and a plain create that refer
    to it. Each side checks before the other commits, so without a lock both could succeed and
    leave live references to a deleted resource (8 trials in 20 did, before storage held the
    targets it checks). Either the delete wins and the roles are 422, or a role is stored and
    the delete is 409."""
    settings.RATE_LIMIT_CONCURRENT = 0
    for trial in range(TRIALS):
        target = f"Organization/org-race-{trial}"
        created = fhir("PUT", target, json={**org("Target"), "id": f"org-race-{trial}"})
        assert created.status_code == 201, created.text
        role = {"resourceType": "PractitionerRole", "organization": {"reference": target}}
        deleting, *referring = race(
            [
                partial(fhir, "POST", json=bundle("transaction", call("DELETE", target))),
                partial(fhir, "POST", json=bundle("transaction", post(role))),
                partial(fhir, "POST", "PractitionerRole", json=role),
            ]
        )
        stored = [r for r in referring if r.status_code in (200, 201)]
        if deleting.status_code == 200:
            assert statuses(deleting) == ["204 No Content"]
            assert stored == [], f"trial {trial}: roles stored beside the delete"
            for response in referring:
                assert target in refused(response, 422, "processing")["issue"][0]["diagnostics"]
            assert fhir("GET", target).status_code == 410
        else:
            assert target in refused(deleting, 409, "conflict")["issue"][0]["diagnostics"]
            assert stored, f"trial {trial}: the delete was refused for no stored referrer"
            assert fhir("GET", target).status_code == 200
        referrers = total(fhir, f"PractitionerRole?organization={target}")
        assert referrers == len(stored)


# ---------------------------------------------------------------- hostile bodies


def _deep_bundle(levels: int) -> dict:
    extension: dict = {"url": "http://example.org/nested", "valueString": "x"}
    for _ in range(levels):
        extension = {"url": "http://example.org/nested", "extension": [extension]}
    return bundle("transaction", post(org("Deep", extension=[extension])))


def hostile_bodies() -> dict[str, tuple[bytes, str | None, int]]:
    """name -> (body, Content-Type, expected status)."""
    limit = settings.FHIR_MAX_BUNDLE_ENTRIES
    over = bundle("transaction", *(post(org(f"Org {n}")) for n in range(limit + 1)))
    same = f"urn:uuid:{uuid.uuid4()}"
    duplicate = bundle("transaction", post(org("A"), same), post(org("B"), same))
    huge = bundle("batch", post(org("x" * (settings.FHIR_MAX_BODY_BYTES + 1))))
    valid = json.dumps(bundle("transaction", post(org("Fine")))).encode()
    elsewhere = post(org("X"))
    elsewhere["request"]["url"] = "https://evil.example/fhir/Organization"
    climbing = {
        "resource": {**org("X"), "id": "x"},
        "request": {"method": "PUT", "url": "Organization/../Endpoint/x"},
    }
    nested = bundle("transaction", post(org("Inner")))
    cases = {
        "over the entry limit": (over, JSON, 413),
        "over the body size limit": (huge, JSON, 413),
        "deeply nested resource": (_deep_bundle(40), JSON, 400),
        "ten thousand open brackets": (b"[" * 10_000 + b"]" * 10_000, JSON, 400),
        "duplicate fullUrl": (duplicate, JSON, 400),
        "not JSON": (b"{not json", JSON, 400),
        "not UTF-8": (b'{"resourceType": "Bundle", "type": "\xff\xfe"}', JSON, 400),
        "empty body": (b"", JSON, 400),
        "a JSON array": (b"[]", JSON, 400),
        "a JSON string": (b'"transaction"', JSON, 400),
        # Python's parser takes NaN; no FHIR decimal may hold it.
        "NaN in a resource": (
            valid.replace(b'"Fine"', b'"Fine", "extension": [%s]' % NAN),
            JSON,
            422,
        ),
        "escaped NUL": (valid.replace(b'"Fine"', b'"Fi\\u0000ne"'), JSON, 400),
        "entry not an object": (bundle("transaction", 42), JSON, 400),
        "entry on another server": (bundle("transaction", elsewhere), JSON, 400),
        "entry climbing out of its type": (bundle("transaction", climbing), JSON, 400),
        "a Bundle inside a transaction": (bundle("transaction", post(nested)), JSON, 404),
        "text/plain": (valid, "text/plain", 415),
        "XML": (valid, "application/fhir+xml", 415),
        "a form": (b"resourceType=Bundle&type=transaction", FORM, 415),
        "multipart": (valid, "multipart/form-data; boundary=x", 415),
        "no Content-Type": (valid, None, 415),
    }
    return {
        name: (body if isinstance(body, bytes) else json.dumps(body).encode(), kind, status)
        for name, (body, kind, status) in cases.items()
    }


def test_hostile_bodies_are_refused_cleanly(fhir):
    before = stored_rows()
    wrong: list[str] = []
    for name, (body, content_type, status) in hostile_bodies().items():
        response = fhir("POST", data=body, headers={"Content-Type": content_type})
        try:
            diagnostics = refused(response, status)["issue"][0]["diagnostics"]
            assert 0 < len(diagnostics) < 300 and "Traceback" not in diagnostics
        except (AssertionError, KeyError, ValueError) as exc:
            wrong.append(f"{name}: {response.status_code} {response.text[:200]} ({exc})")
    assert wrong == []
    assert_nothing_stored(fhir, before)
