"""Deeply nested JSON is refused with a 400 OperationOutcome before it is parsed, never a 500."""

from __future__ import annotations

import json

import pytest
import requests
from django.urls import reverse

from directory.errors import InvalidRequest
from directory.validation import json_depth, parse_json
from tests.servers import gunicorn, process_env, wait_until_serving

from .conftest import FHIR_JSON, body_for, outcome_issue, send

DEEP = 10_000


def nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


def deep_organization(depth: int) -> str:
    """A valid Organization but for its depth: extensions nested in extensions, `depth` levels
    of arrays and objects in all."""
    levels = (depth - 3) // 2
    url = '"url": "http://example.org/fhir/StructureDefinition/nested"'
    extension = (f'{{{url}, "extension": [' * levels) + f'{{{url}, "valueString": "x"}}'
    extension += "]}" * levels
    return json.dumps(body_for("Organization"))[:-1] + f', "extension": [{extension}]}}'


# ---------------------------------------------------------------------------- the scan


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("{}", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('{"a": "[[[{{{"}', 1),
        ('{"a": "quote \\" then [[[", "b": [[]]}', 3),
        ('{"a\\\\": [[]]}', 3),
        ("12", 0),
        (nested(DEEP), DEEP),
        ('"unterminated [[[', 3),
    ],
)
def test_depth_is_counted_outside_strings(text, depth):
    assert json_depth(text) == depth


def test_limit_is_the_setting(settings):
    settings.FHIR_MAX_JSON_DEPTH = 4
    assert parse_json('{"a": [[{}]]}')
    with pytest.raises(InvalidRequest, match="deeper than 4 levels"):
        parse_json('{"a": [[[{}]]]}')


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
def test_deep_bodies_are_refused_in_every_json_encoding(encoding):
    with pytest.raises(InvalidRequest, match="deeper than 64 levels"):
        parse_json(nested(DEEP, "{", "}").encode(encoding))
    assert parse_json('{"a": [1]}'.encode(encoding)) == {"a": [1]}


# ---------------------------------------------------------------------------- the API


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/fhir/Organization"), ("PUT", "/fhir/Organization/deep")],
)
@pytest.mark.parametrize("body", [nested(DEEP), nested(DEEP, '{"a":', "}"), None])
def test_api_refuses_deep_bodies(api, method, path, body):
    content = deep_organization(DEEP) if body is None else body
    response = send(api, method, path, content)
    assert response.status_code == 400
    assert "deeper than 64 levels" in outcome_issue(response)["diagnostics"]


def test_resources_at_ordinary_depth_still_work(api):
    content = deep_organization(64)
    assert 60 < json_depth(content) <= 64
    response = send(api, "POST", "/fhir/Organization", content)
    assert response.status_code == 201, response.content


def test_admin_editor_refuses_deep_json_as_a_form_error(admin_client, db):
    add = reverse("admin:directory_organizationrecord_add")
    response = admin_client.post(add, {"content_json": nested(DEEP, '{"a":', "}")})
    assert response.status_code == 200
    assert "deeper than 64 levels" in response.content.decode()


# ---------------------------------------------------------------------------- over real HTTP


@pytest.mark.django_db(transaction=True)
def test_deep_body_over_http_is_a_400_outcome(tmp_path, credentials, token_issuer):
    env = process_env(
        ENVIRONMENT="test",
        # The test sends the certificate header as nginx would, from loopback.
        SECURITY_TRUSTED_PROXIES="127.0.0.1/32",
        SECURITY_JWT_ISSUERS_FILE=token_issuer.issuers_file,
    )
    headers = {**credentials.http, "Accept": FHIR_JSON, "Content-Type": FHIR_JSON}
    with gunicorn(env, tmp_path) as (url, process):
        wait_until_serving(url, process)
        responses = [
            requests.post(f"{url}/fhir/Organization", data=body, headers=headers, timeout=30)
            for body in (nested(DEEP), deep_organization(DEEP))
        ]
    for response in responses:
        assert response.status_code == 400, response.text
        assert response.headers["Content-Type"].startswith(FHIR_JSON)
        assert response.json()["resourceType"] == "OperationOutcome"
