"""Page cursors are checked field by field: a forged one is a 400 even with a valid signature.

The cursors here are signed with the test SECRET_KEY, as anyone who knows a server's key could
sign them; each carries a field of the wrong type, out of range, missing or unknown.
"""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from django.core import signing

from directory.search.paging import CURSOR_SALT
from fhirapi.paging import _SALT as HISTORY_SALT
from tests.factories import OrganizationFactory
from tests.servers import gunicorn, process_env, wait_until_serving

from .conftest import FHIR_JSON, outcome_issue

BAD_VALUES = [
    "not-a-number",
    [1],
    {"x": 1},
    None,
    True,
    -1,
    10**30,
    1.5,
]


def next_cursor(api, path: str) -> dict:
    """The state signed in the `next` link of a search or history page."""
    bundle = api.get(path).json()
    link = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    token = parse_qs(urlsplit(link).query)["_cursor"][0]
    salt = HISTORY_SALT if "_history" in path else CURSOR_SALT
    return signing.loads(token, salt=salt)


def with_cursor(path: str, token: str) -> str:
    # The test client's `data` would replace the path's own query, so the cursor is appended.
    return f"{path}&_cursor={quote(token)}"


def signed_payload(payload: bytes, salt: str) -> str:
    """A validly signed cursor whose payload is any bytes, JSON or not."""
    return signing.TimestampSigner(salt=salt).sign(signing.b64_encode(payload).decode())


def variants(state: dict) -> list:
    """The state with each field wrong in each way, dropped, and with an unknown field added."""
    forged = [
        {**state, field: bad}
        for field in state
        if field not in "tq"
        for bad in BAD_VALUES
        if type(bad) is not type(state[field]) or bad in (-1, 10**30)
    ]
    forged += [{k: v for k, v in state.items() if k != field} for field in state if field != "t"]
    forged += [{**state, "x": 1}, [state], "state", 7]
    return forged


def forged_tokens(state: dict, salt: str) -> list[str]:
    tokens = [signing.dumps(value, salt=salt, compress=True) for value in variants(state)]
    tokens += [
        signed_payload(b"not json at all", salt),
        signed_payload(b"[" * 5000 + b"]" * 5000, salt),
        signed_payload(b'{"b": 1' + b"1" * 5000 + b"}", salt),
        signing.TimestampSigner(salt=salt).sign(".bm90IHpsaWI"),  # "compressed", not zlib
    ]
    return tokens


@pytest.fixture
def organizations(db):
    for number in range(5):
        OrganizationFactory.create(id=f"org-{number}", name=f"Clinic {number}")


SEARCHES = [
    "/fhir/Organization?_count=2",  # keyset on insertion order (an integer key)
    "/fhir/Organization?_count=2&_sort=_id",  # keyset on the logical id (a string)
    "/fhir/Organization?_count=2&_sort=name",  # a snapshot and an offset
]


@pytest.mark.parametrize("search", SEARCHES)
def test_forged_search_cursors_are_400(api, organizations, search):
    state = next_cursor(api, search)
    assert api.get(with_cursor(search, signing.dumps(state, salt=CURSOR_SALT))).status_code == 200
    for token in forged_tokens(state, CURSOR_SALT):
        response = api.get(with_cursor(search, token))
        assert response.status_code == 400, (token, response.content)
        assert outcome_issue(response)["expression"] == ["_cursor"]


def test_forged_history_cursors_are_400(api, organizations):
    path = "/fhir/Organization/_history?_count=2"
    state = next_cursor(api, path)
    for token in forged_tokens(state, HISTORY_SALT):
        response = api.get(with_cursor(path, token))
        assert response.status_code == 400, (token, response.content)
        assert outcome_issue(response)["expression"] == ["_cursor"]


def test_snapshot_cursor_naming_no_snapshot_is_refused(api, organizations):
    search = SEARCHES[2]
    state = next_cursor(api, search)
    unknown = {**state, "s": "00000000-0000-4000-8000-000000000000"}
    response = api.get(with_cursor(search, signing.dumps(unknown, salt=CURSOR_SALT)))
    assert response.status_code == 400
    assert "repeat the search" in outcome_issue(response)["diagnostics"]


@pytest.mark.django_db(transaction=True)
def test_forged_cursors_over_http_are_400_outcomes(tmp_path, api, credentials, token_issuer):
    for number in range(3):
        OrganizationFactory.create(id=f"wire-{number}")
    cursors = [
        (search, token)
        for search in SEARCHES
        for token in forged_tokens(next_cursor(api, search), CURSOR_SALT)[::3]
        if len(token) < 4000  # within the request line limit
    ]
    env = process_env(
        ENVIRONMENT="test",
        # The test sends the certificate header as nginx would, from loopback.
        SECURITY_TRUSTED_PROXIES="127.0.0.1/32",
        SECURITY_JWT_ISSUERS_FILE=token_issuer.issuers_file,
    )
    headers = {**credentials.http, "Accept": FHIR_JSON}
    with gunicorn(env, tmp_path) as (url, process):
        wait_until_serving(url, process)
        with requests.Session() as session:
            responses = [
                session.get(f"{url}{with_cursor(search, token)}", headers=headers, timeout=10)
                for search, token in cursors
            ]
    assert {response.status_code for response in responses} == {400}
    assert {response.json()["resourceType"] for response in responses} == {"OperationOutcome"}
