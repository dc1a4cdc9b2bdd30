"""The secrets sweep finds an issued secret however a client could have encoded it."""

import base64
import secrets
from urllib.parse import quote

import pytest

from tests import logcapture


@pytest.fixture
def issued(monkeypatch):
    secret = secrets.token_urlsafe(32) + "/+="  # characters that encodings change
    monkeypatch.setattr(logcapture, "ISSUED", {secret})
    return secret


@pytest.mark.parametrize("lead", [b"", b"u", b"us", b"user:"])
@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
def test_found_inside_base64_at_any_alignment(issued, lead, encode):
    header = "Authorization: Basic " + encode(lead + issued.encode() + b"!").decode()
    assert logcapture.leaked([header]) == [issued[:12] + "…"]


@pytest.mark.parametrize("form", [lambda s: s, lambda s: quote(s, safe="")])
def test_found_as_is_and_percent_encoded(issued, form):
    assert logcapture.leaked([f"GET /fhir/Organization?x=1&apikey={form(issued)} 200"])


def test_not_found_where_it_is_not(issued):
    noise = base64.b64encode(secrets.token_bytes(4000)).decode()
    assert logcapture.leaked([noise, issued[:20], issued[1:-1]]) == []
