"""The API's one authorization decision, over real HTTP through the whole security chain.

Every resource in a response must be covered by the token's scopes: the types a search returns
(`_include`, `_revinclude`, also `:iterate`) need `r`, the types it matches on (chains, `_has`)
need `s`. Conditional create needs `s`; an update that creates needs `c`. Refusals are 403
OperationOutcomes and the audit records what was needed and what was missing.
"""

from __future__ import annotations

import pytest
import requests

from security.models import RequestAudit
from tests.factories import FACTORIES

pytestmark = pytest.mark.django_db(transaction=True)

JSON = "application/fhir+json"


@pytest.fixture
def directory(credentials):
    """An organization with an endpoint, a practitioner, and a role joining them."""
    endpoint = FACTORIES["Endpoint"].create(id="ep-1")
    org = FACTORIES["Organization"].create(
        id="org-1", name="Harbor Clinic", endpoint=[{"reference": f"Endpoint/{endpoint['id']}"}]
    )
    practitioner = FACTORIES["Practitioner"].create(id="pr-1")
    FACTORIES["PractitionerRole"].create(
        id="role-1",
        practitioner={"reference": f"Practitioner/{practitioner['id']}"},
        organization={"reference": f"Organization/{org['id']}"},
    )
    return org


@pytest.fixture
def as_scopes(live_server, credentials, token_issuer):
    """A function sending a request whose token carries only the given scopes."""

    def send(scope: str, method: str, path: str, **kwargs) -> requests.Response:
        headers = {
            **credentials.http,
            "Authorization": f"Bearer {token_issuer.mint(scope=scope)}",
            "Accept": JSON,
            **kwargs.pop("headers", {}),
        }
        url = f"{live_server.url}/fhir/{path}"
        return requests.request(method, url, headers=headers, timeout=10, **kwargs)

    return send


def assert_forbidden(response: requests.Response) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "forbidden"
    assert "entry" not in body
    assert response.headers["Cache-Control"] == "no-store"


def returned_types(response: requests.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {e["resource"]["resourceType"] for e in response.json().get("entry", [])}


# ---------------------------------------------------------------- searches reading other types


@pytest.mark.parametrize(
    "scope, path",
    [
        (
            "system/PractitionerRole.read",
            "PractitionerRole?_include=PractitionerRole:practitioner"
            "&_include=PractitionerRole:organization",
        ),
        (
            "system/PractitionerRole.read system/Practitioner.read",
            "PractitionerRole?_include=PractitionerRole:practitioner"
            "&_include=PractitionerRole:organization",
        ),
        ("system/Organization.read", "Organization?_revinclude=PractitionerRole:organization"),
        # A wildcard include needs every type its parameters can point at.
        (
            "system/PractitionerRole.read system/Practitioner.read",
            "PractitionerRole?_include=PractitionerRole:*",
        ),
        # Iterated includes reach further still.
        (
            "system/PractitionerRole.read system/Organization.read",
            "PractitionerRole?_include=PractitionerRole:organization"
            "&_include:iterate=Organization:endpoint",
        ),
        # Chains and _has search other types: they need search rights there.
        ("system/PractitionerRole.read", "PractitionerRole?practitioner.name=Smith"),
        ("system/PractitionerRole.read", "PractitionerRole?practitioner:Practitioner.name=Smith"),
        ("system/Organization.read", "Organization?_has:PractitionerRole:organization:active=true"),
        (
            "system/Organization.read system/PractitionerRole.s",
            "Organization?_has:PractitionerRole:organization:_has:Endpoint:organization:status=x",
        ),
        # Every hop of a multi-hop chain, and a chain inside _has, is a type searched.
        (
            "system/PractitionerRole.read system/Location.s",
            "PractitionerRole?location.organization.name=Harbor",
        ),
        (
            "system/Practitioner.read system/PractitionerRole.s",
            "Practitioner?_has:PractitionerRole:practitioner:organization.name=Harbor",
        ),
        # `_include=*` returns every target type; iterated, the targets' targets too.
        ("system/PractitionerRole.read system/Practitioner.r", "PractitionerRole?_include=*"),
        (
            "system/PractitionerRole.read system/Practitioner.r system/Organization.r"
            " system/Location.r",
            "PractitionerRole?_include:iterate=*",
        ),
        # Search rights alone do not let included resources be read.
        (
            "system/PractitionerRole.read system/Practitioner.s",
            "PractitionerRole?_include=PractitionerRole:practitioner",
        ),
    ],
)  # fmt: skip
def test_a_search_reading_an_ungranted_type_is_refused_whole(directory, as_scopes, scope, path):
    assert_forbidden(as_scopes(scope, "GET", path))


def test_post_search_is_judged_by_its_form_body(directory, as_scopes):
    response = as_scopes(
        "system/PractitionerRole.read",
        "POST",
        "PractitionerRole/_search",
        data="_include=PractitionerRole:organization",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_forbidden(response)


@pytest.mark.parametrize(
    "scope, path, expected",
    [
        (
            "system/PractitionerRole.read system/Practitioner.r system/Organization.r",
            "PractitionerRole?_include=PractitionerRole:practitioner"
            "&_include=PractitionerRole:organization",
            {"PractitionerRole", "Practitioner", "Organization"},
        ),
        (
            "system/Organization.read system/PractitionerRole.r",
            "Organization?_revinclude=PractitionerRole:organization",
            {"Organization", "PractitionerRole"},
        ),
        (
            "system/PractitionerRole.read system/Organization.r",
            "PractitionerRole?_include=PractitionerRole:organization:Organization",
            {"PractitionerRole", "Organization"},
        ),
        ("system/PractitionerRole.read", "PractitionerRole", {"PractitionerRole"}),
        (
            "system/PractitionerRole.read system/Organization.r system/Endpoint.r",
            "PractitionerRole?_include=PractitionerRole:organization"
            "&_include:iterate=Organization:endpoint",
            {"PractitionerRole", "Organization", "Endpoint"},
        ),
        (
            "system/PractitionerRole.read system/Organization.s",
            "PractitionerRole?organization.name=Harbor",
            {"PractitionerRole"},
        ),
        (
            "system/Organization.read system/PractitionerRole.s system/Practitioner.s",
            "Organization?_has:PractitionerRole:organization:practitioner._id=pr-1",
            {"Organization"},
        ),
    ],
)  # fmt: skip
def test_granted_includes_are_returned(directory, as_scopes, scope, path, expected):
    assert returned_types(as_scopes(scope, "GET", path)) == expected


def test_the_audit_records_what_was_needed_and_missing(directory, as_scopes):
    as_scopes(
        "system/PractitionerRole.read",
        "GET",
        "PractitionerRole?_include=PractitionerRole:practitioner",
    )
    row = RequestAudit.objects.get(path="/fhir/PractitionerRole")
    assert (row.status, row.outcome) == (403, "scope-missing")
    assert (row.interaction, row.resource_type) == ("search-type", "PractitionerRole")
    assert "search-type needs PractitionerRole.s: allow" in row.decision
    assert "missing Practitioner.r" in row.decision


# ---------------------------------------------------------------- writes that read or create


IF_NONE_EXIST = {
    "If-None-Exist": "name=Harbor",
    "Content-Type": JSON,
    "Prefer": "return=representation",
}
NEW_ORG = {"resourceType": "Organization", "name": "Harbor Clinic"}


def test_conditional_create_needs_search_rights(directory, as_scopes):
    refused = as_scopes(
        "system/Organization.c", "POST", "Organization", json=NEW_ORG, headers=IF_NONE_EXIST
    )
    assert_forbidden(refused)
    matched = as_scopes(
        "system/Organization.cs", "POST", "Organization", json=NEW_ORG, headers=IF_NONE_EXIST
    )
    assert matched.status_code == 200
    assert matched.json()["id"] == "org-1"


def test_create_without_criteria_needs_only_create(directory, as_scopes):
    created = as_scopes(
        "system/Organization.c",
        "POST",
        "Organization",
        json=NEW_ORG,
        headers={"Content-Type": JSON},
    )
    assert created.status_code == 201


def test_update_that_would_create_needs_create_rights(directory, as_scopes):
    body = {"resourceType": "Organization", "id": "new-id", "name": "New Clinic"}
    headers = {"Content-Type": JSON}
    assert_forbidden(
        as_scopes("system/Organization.u", "PUT", "Organization/new-id", json=body, headers=headers)
    )
    # Nothing was written by the refused request.
    assert as_scopes("system/*.read", "GET", "Organization/new-id").status_code == 404
    created = as_scopes(
        "system/Organization.cu", "PUT", "Organization/new-id", json=body, headers=headers
    )
    assert created.status_code == 201


def test_update_of_an_existing_resource_needs_only_update(directory, as_scopes):
    body = {"resourceType": "Organization", "id": "org-1", "name": "Harbor Clinic East"}
    updated = as_scopes(
        "system/Organization.u",
        "PUT",
        "Organization/org-1",
        json=body,
        headers={"Content-Type": JSON},
    )
    assert updated.status_code == 200


def test_reviving_a_deleted_resource_is_a_create(directory, as_scopes):
    body = FACTORIES["Endpoint"].create(id="ep-9")
    as_scopes("system/*.cruds", "DELETE", "Endpoint/ep-9").raise_for_status()
    revive = as_scopes(
        "system/Endpoint.u", "PUT", "Endpoint/ep-9", json=body, headers={"Content-Type": JSON}
    )
    assert_forbidden(revive)
    assert as_scopes("system/*.read", "GET", "Endpoint/ep-9").status_code == 410


# ---------------------------------------------------------------- HEAD


@pytest.mark.parametrize(
    "path",
    ["Organization/org-1", "Organization?name=Harbor", "metadata", "Organization/org-1/_history/1"],
)
def test_head_answers_wherever_get_does(directory, as_scopes, path):
    get = as_scopes("system/*.read", "GET", path)
    head = as_scopes("system/*.read", "HEAD", path)
    assert (head.status_code, get.status_code) == (200, 200)
    assert head.content == b""
    for name in ("Content-Type", "Cache-Control", "ETag"):
        assert head.headers.get(name) == get.headers.get(name)


def test_head_is_authorized_like_get(directory, as_scopes):
    assert as_scopes("system/Practitioner.read", "HEAD", "Organization/org-1").status_code == 403


# ---------------------------------------------------------------- the last check on the way out


def test_a_response_carrying_an_ungranted_type_fails_closed(rf, settings, token_issuer):
    from fhirapi.authorization import Denied, check_response
    from security.context import context_of

    request = rf.get("/fhir/Organization")
    context_of(request).token_claims = {"scope": "system/Organization.read"}
    settings.SECURITY_SCOPE_CONVENTION = "smart"
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": {"resourceType": "Organization"}, "search": {"mode": "match"}},
            {"resource": {"resourceType": "Endpoint"}, "search": {"mode": "include"}},
        ],
    }
    with pytest.raises(Denied):
        check_response(request, bundle)
    assert context_of(request).outcome == "scope-missing"
    bundle["entry"].pop()
    check_response(request, bundle)  # only granted types: passes


def test_a_batch_response_is_checked_entry_by_entry(rf, settings):
    from fhirapi.authorization import Denied, check_response
    from security.context import context_of

    request = rf.post("/fhir")
    context_of(request).token_claims = {"scope": "system/Organization.c system/Location.rs"}
    settings.SECURITY_SCOPE_CONVENTION = "smart"
    written = {
        "resource": {"resourceType": "Organization"},
        "response": {"status": "201 Created", "location": "Organization/o/_history/1"},
    }
    read = {"resource": {"resourceType": "Location"}, "response": {"status": "200 OK"}}
    search = {
        "resource": {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": {"resourceType": "Location"}, "search": {"mode": "match"}}],
        },
        "response": {"status": "200 OK"},
    }
    bundle = {"resourceType": "Bundle", "type": "batch-response", "entry": [written, read, search]}
    check_response(request, bundle)  # each entry is covered
    for uncovered in (
        {**read, "resource": {"resourceType": "Organization"}},  # a read needs r
        {**written, "resource": {"resourceType": "Endpoint"}},  # a write needs c or u
        {
            **search,
            "resource": {
                **search["resource"],
                "entry": [
                    {"resource": {"resourceType": "Endpoint"}, "search": {"mode": "include"}}
                ],
            },
        },
    ):
        with pytest.raises(Denied):
            check_response(request, {**bundle, "entry": [written, uncovered]})
