"""The conformance data, loaded once for the whole package through the API, and a search client.

Loading 60 resources for each of a thousand searches would be most of the run, so they are
written once, committed, for the package (the tests themselves run in transactions that roll
back, so none of them can change what the others see) and flushed at the end, as
transactional tests leave the database. The load goes through the full security chain with a
registered client's certificate, API key and token, as every API test does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.test import override_settings
from rest_framework.test import APIClient

from tests.credentials import Credentials, register_directory_client
from tests.security.trust import register_community

from . import package

FHIR_JSON = "application/fhir+json"
LOOPBACK = ["127.0.0.1/32", "::1/128"]
STRICT = {"HTTP_PREFER": "handling=strict"}  # an unknown parameter fails with its reason
MAX_PAGES = 50  # more pages than the data could fill means the server's paging loops
# Settings the load runs under. The Plan-Net examples give NPI 1407071236 to five Organizations
# and NPI 9941339100 to three Practitioners and an Organization, which this directory refuses as
# duplicates (directory/identifiers.py): whether a conformance load may relax that rule is the
# server's decision, made here by naming its setting, not by patching the server.
# The examples give one NPI to several records (1407071236 on five Organizations, 9941339100 on
# an Organization and three Practitioners): NPI uniqueness is off for the load.
LOAD_SETTINGS: dict = {"FHIR_UNIQUE_NPI": False}


@dataclass
class Load:
    """How the data got in: the transaction's answer, and each resource's own status."""

    transaction_status: int
    transaction_body: dict
    stored: dict[str, int] = field(default_factory=dict)  # `Type/id` -> status of its write
    refused: dict[str, dict] = field(default_factory=dict)  # `Type/id` -> OperationOutcome


@dataclass
class Loaded:
    credentials: Credentials
    load: Load


def _client(credentials: Credentials) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_ACCEPT=FHIR_JSON, **credentials.meta)
    return client


def _references(node) -> set[str]:
    if isinstance(node, dict):
        found = {node["reference"]} if isinstance(node.get("reference"), str) else set()
        return found.union(*(_references(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_references(v) for v in node))
    return set()


def dependency_order() -> list[str]:
    """Every resource after the ones it references, for servers that check each write alone."""
    graph = {
        key: _references(resource) & package.RESOURCES.keys()
        for key, resource in package.RESOURCES.items()
    }
    return list(TopologicalSorter(graph).static_order())


def transaction_bundle() -> dict:
    """One transaction of PUTs: every resource keeps its id, entries in file order."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": resource, "request": {"method": "PUT", "url": key}}
            for key, resource in package.RESOURCES.items()
        ],
    }


def load_everything(client: APIClient) -> Load:
    """The transaction first; if the server refuses it, each resource alone in dependency
    order, so that the types it does support can still be searched and judged."""
    response = client.post("/fhir/", json.dumps(transaction_bundle()), content_type=FHIR_JSON)
    load = Load(response.status_code, response.json())
    if response.status_code == 200:
        for key, entry in zip(package.RESOURCES, response.json()["entry"], strict=True):
            load.stored[key] = int(entry["response"]["status"].split()[0])
        return load
    for key in dependency_order():
        body = json.dumps(package.RESOURCES[key])
        answer = client.put(f"/fhir/{key}", body, content_type=FHIR_JSON)
        load.stored[key] = answer.status_code
        if answer.status_code >= 300:
            load.refused[key] = answer.json()
    return load


@pytest.fixture(scope="package")
def conformance_data(django_db_setup, django_db_blocker, pki, token_issuer) -> Loaded:
    """The Plan-Net examples and our extra resources, stored through the API once."""
    from directory.models import Resource

    settings = override_settings(
        SECURITY_TRUSTED_PROXIES=LOOPBACK, SECURITY_JWT_ISSUERS_FILE=token_issuer.issuers_file
    )
    with django_db_blocker.unblock():
        if Resource.objects.exists():
            pytest.fail("the conformance tests need an empty directory; another test left data")
    try:
        with django_db_blocker.unblock(), settings:
            credentials = register_directory_client(pki, token_issuer, register_community(pki.a))
            with override_settings(**LOAD_SETTINGS):
                load = load_everything(_client(credentials))
        yield Loaded(credentials, load)
    finally:
        # Also after a failed load: what it committed must not reach the tests that follow.
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)


@dataclass
class Result:
    status: int
    matches: set[str] = field(default_factory=set)  # ids of search-mode `match` entries
    included: set[str] = field(default_factory=set)  # `Type/id` of `include` entries
    body: dict = field(default_factory=dict)  # the first page, or the error
    entries: list[dict] = field(default_factory=list)


class Directory:
    """Searches the loaded directory as a registered client, following `next` links."""

    def __init__(self, client: APIClient):
        self.client = client

    def get(self, path: str, **headers):
        return self.client.get(path, **headers)

    def search(self, base: str, query: str, **headers) -> Result:
        url, result = f"/fhir/{base}?{query}", None
        for _ in range(MAX_PAGES):
            response = self.client.get(url, **headers)
            body = response.json()
            if response.status_code != 200:
                return Result(response.status_code, body=body)
            result = result or Result(200, body=body)
            self._collect(result, base, body)
            url = _next_link(body)
            if url is None:
                return result
        pytest.fail(f"{base}?{query}: still a next link after {MAX_PAGES} pages")

    @staticmethod
    def _collect(result: Result, base: str, body: dict):
        for entry in body.get("entry") or []:
            resource, mode = entry["resource"], entry.get("search", {}).get("mode")
            result.entries.append(entry)
            if mode == "match":
                assert resource["resourceType"] == base, f"a match of another type: {entry}"
                assert resource["id"] not in result.matches, f"{resource['id']} came twice"
                result.matches.add(resource["id"])
            elif mode == "include":
                result.included.add(f"{resource['resourceType']}/{resource['id']}")


def _next_link(body: dict) -> str | None:
    for link in body.get("link") or []:
        if link["relation"] == "next":
            parts = urlsplit(link["url"])
            return f"{parts.path}?{parts.query}"
    return None


@pytest.fixture
def server(db, conformance_data, settings, token_issuer) -> Directory:
    settings.SECURITY_JWT_ISSUERS_FILE = token_issuer.issuers_file
    return Directory(_client(conformance_data.credentials))


def describe(result: Result, case) -> str:
    """A failure message naming what was missing and what should not have come."""
    if result.status != 200:
        issues = result.body.get("issue") or [{}]
        return f"HTTP {result.status}: {issues[0].get('diagnostics')}"
    expected = set(case.expected)
    missing, extra = sorted(expected - result.matches), sorted(result.matches - expected)
    return f"missing {missing}, unexpected {extra}"


@pytest.fixture(autouse=True)
def _fresh_security_caches():
    """Keeps the security caches across this package's tests (tests/conftest.py clears them
    around every test): its one client and trust are committed once and never change here, and
    reading them again for each of the package's searches would be a large part of its time."""
    yield
