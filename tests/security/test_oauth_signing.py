"""The server's signing keys: stored encrypted, rotated with an overlap in the JWKS, by command
or from the admin page (administrators only)."""

import json
from io import StringIO

import pytest
import requests
from django.core.management import call_command

from security.models import KeyEvent, SigningKey
from security.oauth import signing

from .conftest import LIVE_DB
from .oauth_support import *  # noqa: F403  (fixtures)
from .oauth_support import enable_oauth, fhir_get, get_token, post_token, token_form
from .staff import make_staff, signed_in_as

PAGE = "/admin/signing-keys/"


def jwks_kids(server) -> list[str]:
    document = requests.get(f"{server}/oauth/jwks", timeout=10).json()
    return [key["kid"] for key in document["keys"]]


def test_private_key_is_stored_encrypted(db, settings):
    settings.OAUTH_SERVER_URL = "https://directory.example.org"
    key = signing.current_key()
    row = SigningKey.objects.get(kid=key.kid)
    assert "PRIVATE KEY" not in row.private_key_encrypted
    assert "d" not in json.loads(row.public_jwk)  # the published half holds no private part
    assert signing.current_key().kid == key.kid  # the same key until rotated


@LIVE_DB
def test_rotation_publishes_both_keys_and_old_tokens_keep_working(oauth_server, cert_client, pki):
    enable_oauth(cert_client, pki.valid)
    old_token = get_token(oauth_server, pki.valid, "client-a")
    old_kid = SigningKey.objects.get().kid
    out = StringIO()
    call_command("rotatesigningkey", stdout=out)
    new = SigningKey.objects.get(state=SigningKey.ACTIVE)
    assert new.kid in out.getvalue()
    assert sorted(jwks_kids(oauth_server)) == sorted([old_kid, new.kid])
    retiring = SigningKey.objects.get(kid=old_kid)
    assert retiring.state == SigningKey.RETIRING and retiring.private_key_encrypted == ""
    # A token signed before the rotation verifies during the overlap; new ones use the new key.
    assert fhir_get(oauth_server, "Organization", old_token, pki.valid).status_code == 200
    new_token = get_token(oauth_server, pki.valid, "client-a")
    assert _kid(new_token) == new.kid
    assert KeyEvent.objects.filter(action="signing-key-rotated").count() == 1


@LIVE_DB
def test_after_the_overlap_the_old_key_is_gone(oauth_server, cert_client, pki):
    enable_oauth(cert_client, pki.valid)
    old_token = get_token(oauth_server, pki.valid, "client-a")
    signing.rotate(actor="tests")
    SigningKey.objects.filter(state=SigningKey.RETIRING).update(publish_until="2000-01-01T00:00Z")
    assert len(jwks_kids(oauth_server)) == 1
    assert fhir_get(oauth_server, "Organization", old_token, pki.valid).status_code == 401
    signing.rotate(actor="tests")
    assert SigningKey.objects.count() == 2  # the expired one is deleted on the next rotation


@LIVE_DB
def test_a_key_the_secret_cannot_open_is_not_used(oauth_server, cert_client, pki, settings):
    from .oauth_support import assertion

    enable_oauth(cert_client, pki.valid)
    get_token(oauth_server, pki.valid, "client-a")
    settings.OAUTH_SIGNING_KEY_SECRET = "another secret entirely"
    response = post_token(oauth_server, token_form(assertion(pki.valid.key, "client-a")), pki.valid)
    assert response.status_code == 503
    assert response.json() == {"error": "temporarily_unavailable"}


def _kid(token: str) -> str:
    import base64

    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


# --- the admin page ----------------------------------------------------------------------------


@pytest.fixture
def oauth_on(db, settings):
    settings.OAUTH_SERVER_URL = "https://directory.example.org"


def test_administrator_sees_and_rotates(oauth_on):
    first = signing.current_key().kid
    browser = signed_in_as(make_staff("ada", "admin"))
    page = browser.get(PAGE)
    assert page.status_code == 200
    assert first in page.content.decode()
    rotated = browser.post(PAGE)
    assert rotated.status_code == 302
    active = SigningKey.objects.get(state=SigningKey.ACTIVE)
    assert active.kid != first
    assert KeyEvent.objects.get(action="signing-key-rotated").actor == "ada"


def test_superuser_may_rotate(oauth_on):
    from django.contrib.auth import get_user_model

    root = get_user_model().objects.create_superuser("root", password="x" * 20)
    assert signed_in_as(root).post(PAGE).status_code == 302
    assert SigningKey.objects.filter(state=SigningKey.ACTIVE).count() == 1


@pytest.mark.parametrize("role", ["support", "auditor"])
def test_other_roles_may_not(oauth_on, role):
    browser = signed_in_as(make_staff("sam", role))
    assert browser.get(PAGE).status_code == 403
    assert browser.post(PAGE).status_code == 403
    assert not SigningKey.objects.exists()


def test_signed_out_is_sent_to_sign_in(oauth_on, client):
    response = client.post(PAGE)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not SigningKey.objects.exists()
