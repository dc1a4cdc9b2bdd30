"""The web admin's client pages and key actions over HTTP: permissions, one-time keys, events."""

from datetime import timedelta
from io import StringIO

import pytest
from cryptography.hazmat.primitives import hashes
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from security import admin as security_admin
from security import clients, keys
from security.clients import add_identity
from security.keys import KEY_PATTERN, issue_key, verify_key
from security.models import ApiClient, ApiKey, KeyEvent, TrustCommunity

from .factories import ApiClientFactory, make_certificate

PASSWORD = "correct horse battery staple"
VIEW = ["view_apiclient", "view_apikey", "view_keyevent", "view_requestaudit"]
KEY_ACTIONS = ["issue_apikey", "rotate_apikey", "retire_apikey"]


def staff_user(username, codenames):
    """A staff user holding exactly the given security permissions."""
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    permissions = Permission.objects.filter(
        content_type__app_label="security", codename__in=codenames
    )
    assert permissions.count() == len(codenames)
    user.user_permissions.set(permissions)
    return user


def signed_in(user, **options):
    browser = Client(**options)
    browser.force_login(user)
    return browser


@pytest.fixture
def client_row(db):
    row = ApiClientFactory(name="Riverbend HIE", organization="Riverbend Health")
    add_identity(row, "dns", value="hie.riverbend.example.org", actor="tests")
    return row


@pytest.fixture
def issued(client_row):
    """The client's current key and its plaintext, as a command would have issued it."""
    return issue_key(client_row, actor="tests")


@pytest.fixture
def support(db):
    return signed_in(staff_user("sam.support", VIEW + KEY_ACTIONS))


@pytest.fixture
def viewer(db):
    return signed_in(staff_user("vic.viewer", VIEW))


@pytest.fixture
def administrator(db):
    return signed_in(
        staff_user("ada.admin", [*VIEW, *KEY_ACTIONS, "change_apiclient", "add_apiclient"])
    )


def page_url(client):
    return reverse("admin:security_apiclient_change", args=[client.pk])


def issue_url(client):
    return reverse("admin:security_apiclient_issue_key", args=[client.pk])


def rotate_url(key):
    return reverse("admin:security_apiclient_rotate_key", args=[key.pk])


def retire_url(key):
    return reverse("admin:security_apiclient_retire_key", args=[key.pk])


def identity_url(client):
    return reverse("admin:security_apiclient_add_identity", args=[client.pk])


def shown_key(response) -> str:
    found = KEY_PATTERN.findall(response.content.decode())
    assert len(set(found)) == 1, "exactly one key on the page"
    return found[0]


def events(action):
    return KeyEvent.objects.filter(action=action).order_by("time")


# --- Finding a client ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "term",
    [
        "riverbend h",  # name
        "Riverbend Health",  # organisation
        "hie.riverbend",  # SAN DNS identity
    ],
)
def test_search_finds_client_by_name_organisation_and_identity(support, client_row, term):
    ApiClientFactory(name="Someone else")
    response = support.get(reverse("admin:security_apiclient_changelist"), {"q": term})
    assert response.status_code == 200
    assert "Riverbend HIE" in response.text
    assert "Someone else" not in response.text


def test_search_finds_client_by_key_prefix_and_certificate(support, client_row, issued):
    key, _ = issued
    certificate, _ = make_certificate(common_name="Riverbend gateway")
    fingerprint = certificate.fingerprint(_sha256()).hex()
    add_identity(client_row, "fingerprint", value=fingerprint, actor="tests")
    add_identity(client_row, "subject", value="CN=Riverbend gateway,O=Example", actor="tests")
    ApiClientFactory(name="Someone else")
    colons = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    for term in [key.prefix, key.prefix[:6], f"fdk_{key.prefix}", colons, "CN=Riverbend gateway"]:
        response = support.get(reverse("admin:security_apiclient_changelist"), {"q": term})
        assert "Riverbend HIE" in response.text, term
        assert "Someone else" not in response.text, term


def _sha256():
    return hashes.SHA256()


# --- The client page ----------------------------------------------------------------------------


def test_client_page_lists_identities_keys_and_events_without_secrets(support, issued):
    key, plaintext = issued
    response = support.get(page_url(key.client))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    text = response.text
    assert "hie.riverbend.example.org" in text
    assert key.prefix in text
    assert "key-issued" in text and "identity-added" in text
    assert plaintext not in text and key.key_hash not in text
    assert not KEY_PATTERN.search(text)


def test_client_page_shows_the_uploaded_certificate_parsed(administrator, client_row):
    certificate, pem = make_certificate(dns_names=("gw.riverbend.example.org",))
    response = administrator.post(
        identity_url(client_row), {"kind": "dns", "pem": pem}, follow=True
    )
    assert response.status_code == 200
    identity = client_row.identities.get(value="gw.riverbend.example.org")
    assert identity.certificate_pem.strip() == pem.strip()
    text = response.text
    assert certificate.subject.rfc4514_string() in text
    assert certificate.issuer.rfc4514_string() in text
    assert certificate.fingerprint(_sha256()).hex() in text
    assert "2031-01-01" in text  # valid until
    event = events("identity-added").last()
    assert event.actor == "ada.admin"


def test_identity_upload_from_a_file(administrator, client_row):
    from django.core.files.uploadedfile import SimpleUploadedFile

    certificate, pem = make_certificate(dns_names=("file.riverbend.example.org",))
    upload = SimpleUploadedFile("client.pem", pem.encode(), content_type="application/x-pem-file")
    response = administrator.post(
        identity_url(client_row), {"kind": "fingerprint", "certificate": upload}
    )
    assert response.status_code == 302
    assert client_row.identities.filter(value=certificate.fingerprint(_sha256()).hex()).exists()


def test_identity_upload_refuses_what_is_not_a_certificate(administrator, client_row):
    response = administrator.post(identity_url(client_row), {"kind": "dns", "pem": "not a pem"})
    assert response.status_code == 200
    assert "not a PEM certificate" in response.text
    assert client_row.identities.count() == 1


# --- Issue --------------------------------------------------------------------------------------


def test_issued_key_is_shown_exactly_once(support, client_row):
    response = support.post(issue_url(client_row))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    plaintext = shown_key(response)
    key = verify_key(plaintext)
    assert key is not None and key.client_id == client_row.pk
    assert 'data-copy-target="new-key"' in response.text
    assert "security/copy_key.js" in response.text
    # Never again: not on the client page, not in the session, messages or any stored row.
    again = support.get(page_url(client_row))
    assert key.prefix in again.text and plaintext not in again.text
    assert plaintext not in str(support.session.items())
    assert all(plaintext not in morsel.value for morsel in support.cookies.values())
    assert_not_stored(plaintext)
    assert events("key-issued").last().actor == "sam.support"


def assert_not_stored(plaintext):
    # fdk_<prefix>_<secret>: the secret itself may contain "_", so split from the left.
    secret = plaintext.split("_", 2)[2]
    assert len(secret) == 43
    for row in ApiKey.objects.values():
        assert not any(secret in str(value) for value in row.values())
    for row in KeyEvent.objects.values():
        assert not any(secret in str(value) for value in row.values())


def test_issue_page_by_get_shows_no_key(support, client_row):
    response = support.get(issue_url(client_row))
    assert response.status_code == 200
    assert not KEY_PATTERN.search(response.text)
    assert not client_row.keys.exists()


def test_issue_with_expiry(support, client_row):
    expires = (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    response = support.post(issue_url(client_row), {"expires_at": expires})
    assert response.status_code == 200
    assert client_row.keys.get().expires_at is not None
    past = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = support.post(issue_url(client_row), {"expires_at": past})
    assert "must be in the future" in response.text
    assert client_row.keys.count() == 1


# --- Rotate -------------------------------------------------------------------------------------


def test_rotation_keeps_the_old_key_for_the_chosen_grace(support, issued):
    old, old_plaintext = issued
    response = support.post(rotate_url(old), {"grace": "1h", "reason": "scheduled"})
    assert response.status_code == 200
    new_plaintext = shown_key(response)
    assert new_plaintext != old_plaintext
    old.refresh_from_db()
    assert old.state == ApiKey.ROTATING
    expected = timezone.now() + timedelta(hours=1)
    assert abs((old.grace_until - expected).total_seconds()) < 60
    keys.clear_cache()
    assert verify_key(old_plaintext) is not None
    assert verify_key(new_plaintext).pk == old.replaced_by_id
    rotated = events("key-rotated").last()
    assert (rotated.actor, rotated.key_prefix, rotated.reason) == (
        "sam.support",
        old.prefix,
        "scheduled",
    )
    assert_not_stored(new_plaintext)


def test_rotation_without_grace_retires_the_old_key_at_once(support, issued):
    old, old_plaintext = issued
    support.post(rotate_url(old), {"grace": "0", "reason": ""})
    old.refresh_from_db()
    assert old.state == ApiKey.RETIRED
    keys.clear_cache()
    assert verify_key(old_plaintext) is None


def test_a_key_that_is_not_active_cannot_rotate(support, issued):
    old, _ = issued
    keys.retire_key(old, "tests", "leaked")
    response = support.post(rotate_url(old), {"grace": "1h"})
    assert response.status_code == 200
    assert "cannot rotate" in response.text
    assert not KEY_PATTERN.search(response.text)
    assert ApiKey.objects.count() == 1


# --- Retire -------------------------------------------------------------------------------------


def test_retire_page_states_how_soon_it_takes_effect(support, issued, settings):
    settings.SECURITY_CACHE_SECONDS = 5
    response = support.get(retire_url(issued[0]))
    assert response.status_code == 200
    assert "within 5 seconds" in response.text


@pytest.mark.parametrize("reason", ["", "   "])
def test_retire_without_reason_is_refused(support, issued, reason):
    key, _ = issued
    response = support.post(retire_url(key), {"reason": reason})
    assert response.status_code == 200
    assert "This field is required" in response.text
    key.refresh_from_db()
    assert key.state == ApiKey.ACTIVE
    assert not events("key-retired").exists()


def test_retire_with_reason(support, issued):
    key, plaintext = issued
    response = support.post(retire_url(key), {"reason": "compromised: pasted in a ticket"})
    assert response.status_code == 302
    assert response["Location"] == page_url(key.client)
    key.refresh_from_db()
    assert key.state == ApiKey.RETIRED
    keys.clear_cache()
    assert verify_key(plaintext) is None
    event = events("key-retired").last()
    assert (event.actor, event.key_prefix) == ("sam.support", key.prefix)
    assert event.reason == "compromised: pasted in a ticket"
    page = support.get(page_url(key.client))
    assert "compromised: pasted in a ticket" in page.text


# --- Permission boundaries ----------------------------------------------------------------------


def test_view_only_user_sees_the_client_but_no_key_actions(viewer, issued):
    key, _ = issued
    response = viewer.get(page_url(key.client))
    assert response.status_code == 200
    assert key.prefix in response.text
    assert 'id="issue-key"' not in response.text
    assert "rotate-link" not in response.text and "retire-link" not in response.text


def test_view_only_user_cannot_act_on_keys_even_by_url(viewer, issued):
    key, _ = issued
    for url, data in [
        (issue_url(key.client), {}),
        (rotate_url(key), {"grace": "0", "reason": "x"}),
        (retire_url(key), {"reason": "x"}),
        (identity_url(key.client), {"kind": "dns", "value": "x.example.org"}),
    ]:
        assert viewer.get(url).status_code == 403, url
        assert viewer.post(url, data).status_code == 403, url
    key.refresh_from_db()
    assert key.state == ApiKey.ACTIVE
    assert ApiKey.objects.count() == 1
    assert not KeyEvent.objects.filter(actor="vic.viewer").exists()


def test_support_can_act_on_keys_but_not_change_the_client(support, issued):
    key, _ = issued
    client = key.client
    before = client.allowed_scopes
    data = {"name": client.name, "organization": "", "allowed_scopes": "system/*.cruds"}
    response = support.post(page_url(client), {**data, "status": "active", "contact": ""})
    assert response.status_code == 403
    assert (
        support.post(identity_url(client), {"kind": "dns", "value": "x.example.org"}).status_code
        == 403
    )
    client.refresh_from_db()
    assert client.allowed_scopes == before
    assert support.post(issue_url(client)).status_code == 200


@pytest.mark.parametrize("codename", KEY_ACTIONS)
def test_each_key_action_needs_its_own_permission(db, issued, codename):
    key, _ = issued
    browser = signed_in(staff_user("partial", [*VIEW, codename]))
    urls = {
        "issue_apikey": (issue_url(key.client), {}),
        "rotate_apikey": (rotate_url(key), {"grace": "1h"}),
        "retire_apikey": (retire_url(key), {"reason": "x"}),
    }
    for name, (url, data) in urls.items():
        expected = {200, 302} if name == codename else {403}
        assert browser.post(url, data).status_code in expected, (codename, name)


def test_anonymous_users_are_sent_to_the_login_page(client, issued):
    key, _ = issued
    for url in (issue_url(key.client), rotate_url(key), retire_url(key), page_url(key.client)):
        response = client.post(url, {"reason": "x", "grace": "0"})
        assert response.status_code == 302
        assert reverse("admin:login") in response["Location"]
    key.refresh_from_db()
    assert key.state == ApiKey.ACTIVE


def test_key_actions_need_a_csrf_token(db, issued):
    key, _ = issued
    user = staff_user("csrf.test", VIEW + KEY_ACTIONS)
    browser = signed_in(user, enforce_csrf_checks=True)
    assert browser.post(retire_url(key), {"reason": "x"}).status_code == 403
    assert browser.post(issue_url(key.client)).status_code == 403
    key.refresh_from_db()
    assert key.state == ApiKey.ACTIVE


# --- Client changes through the services ---------------------------------------------------------


def test_administrator_changes_scopes_and_status_through_the_services(administrator, client_row):
    data = {
        "name": client_row.name,
        "organization": client_row.organization,
        "community": "",
        "allowed_scopes": "  system/Organization.rs   system/Practitioner.rs ",
        "status": ApiClient.SUSPENDED,
        "contact": "ops@riverbend.example.org",
    }
    response = administrator.post(page_url(client_row), data)
    assert response.status_code == 302, response.content
    client_row.refresh_from_db()
    assert client_row.allowed_scopes == "system/Organization.rs system/Practitioner.rs"
    assert client_row.status == ApiClient.SUSPENDED
    assert events("client-scopes-changed").last().actor == "ada.admin"
    assert events("client-suspended").last().actor == "ada.admin"


def test_administrator_adds_a_client_through_the_service(administrator):
    data = {
        "name": "New HIE",
        "organization": "New",
        "community": "",
        "allowed_scopes": "system/*.read",
    }
    response = administrator.post(
        reverse("admin:security_apiclient_add"), {**data, "status": "active", "contact": ""}
    )
    assert response.status_code == 302, response.content
    created = ApiClient.objects.get(name="New HIE")
    assert events("client-created").get(client=created).actor == "ada.admin"


def test_clients_cannot_be_deleted_from_the_admin(administrator, client_row):
    url = reverse("admin:security_apiclient_delete", args=[client_row.pk])
    assert administrator.post(url, {"post": "yes"}).status_code == 403
    assert ApiClient.objects.filter(pk=client_row.pk).exists()


def _trail(client) -> list[tuple[str, str]]:
    """The client's KeyEvents as (action, detail), oldest first; who acted aside."""
    return list(
        KeyEvent.objects.filter(client=client).order_by("id").values_list("action", "detail")
    )


def test_admin_and_command_create_the_same_client_and_trail(administrator):
    data = {"organization": "Bay", "community": "", "allowed_scopes": "system/*.rs"}
    administrator.post(
        reverse("admin:security_apiclient_add"),
        {**data, "name": "Bay HIE", "status": "active", "contact": ""},
    )
    call_command(
        "createclient", "Bay HIE 2", "--organization", "Bay", "--scopes", "system/*.rs",
        stdout=StringIO(),
    )  # fmt: skip
    by_admin, by_command = (
        ApiClient.objects.get(name="Bay HIE"),
        ApiClient.objects.get(name="Bay HIE 2"),
    )
    fields = ("organization", "community_id", "allowed_scopes", "status", "contact")
    assert [getattr(by_admin, f) for f in fields] == [getattr(by_command, f) for f in fields]
    assert _trail(by_admin) == _trail(by_command) == [("client-created", "scopes: system/*.rs")]


def test_admin_creates_a_suspended_client_with_its_contact_in_one_write(administrator):
    data = {"name": "Quiet HIE", "organization": "", "community": "", "allowed_scopes": ""}
    response = administrator.post(
        reverse("admin:security_apiclient_add"),
        {**data, "status": ApiClient.SUSPENDED, "contact": "ops@quiet.example.org"},
    )
    assert response.status_code == 302
    created = ApiClient.objects.get(name="Quiet HIE")
    assert (created.status, created.contact) == (ApiClient.SUSPENDED, "ops@quiet.example.org")
    assert [a for a, _ in _trail(created)] == ["client-created", "client-suspended"]


def test_admin_edit_leaves_the_trail_the_service_leaves(administrator, client_row):
    twin = ApiClientFactory(name="Twin HIE", organization=client_row.organization)
    clients.update_client(
        twin,
        actor="tests",
        name="Twin HIE",
        organization="Riverbend Health",
        community=None,
        allowed_scopes="system/Organization.rs",
        contact="",
        status=ApiClient.SUSPENDED,
        reason="changed in the web admin",
    )
    data = {
        "name": client_row.name,
        "organization": client_row.organization,
        "community": "",
        "allowed_scopes": " system/Organization.rs ",
        "status": ApiClient.SUSPENDED,
        "contact": "",
    }
    assert administrator.post(page_url(client_row), data).status_code == 302
    edited = [e for e in _trail(client_row) if e[0] != "identity-added"]
    assert edited == _trail(twin)
    assert [a for a, _ in edited] == ["client-scopes-changed", "client-suspended"]
    # Saved again unchanged (only spacing differs): nothing to record.
    data["allowed_scopes"] = "system/Organization.rs  "
    assert administrator.post(page_url(client_row), data).status_code == 302
    assert [e for e in _trail(client_row) if e[0] != "identity-added"] == edited


def test_changed_details_are_one_event_naming_the_fields_by_both_paths(administrator, client_row):
    community = TrustCommunity.objects.create(name="Riverbend", slug="riverbend")
    twin = ApiClientFactory(name="Twin HIE", organization=client_row.organization)
    clients.update_client(
        twin,
        actor="ada.admin",
        name="Twin HIE renamed",
        organization="Riverbend Health System",
        community=community,
        allowed_scopes=client_row.allowed_scopes,
        contact="ops@riverbend.example.org",
        status=ApiClient.ACTIVE,
    )
    data = {
        "name": "Riverbend HIE renamed",
        "organization": "Riverbend Health System",
        "community": str(community.pk),
        "allowed_scopes": client_row.allowed_scopes,
        "status": ApiClient.ACTIVE,
        "contact": "ops@riverbend.example.org",
    }
    assert administrator.post(page_url(client_row), data).status_code == 302
    edited = [e for e in _trail(client_row) if e[0] != "identity-added"]
    assert edited == _trail(twin)
    assert edited == [("client-details-changed", "changed: name, organization, community, contact")]
    assert KeyEvent.objects.get(client=client_row, action="client-details-changed").actor == (
        "ada.admin"
    )
    # One field, and a resave that changes nothing, record only what changed.
    data["contact"] = ""
    assert administrator.post(page_url(client_row), data).status_code == 302
    assert administrator.post(page_url(client_row), data).status_code == 302
    details = [d for a, d in _trail(client_row) if a == "client-details-changed"]
    assert details == ["changed: name, organization, community, contact", "changed: contact"]


@pytest.mark.parametrize(
    ("state", "expires", "grace", "shown"),
    [
        (ApiKey.ACTIVE, None, None, ApiKey.ACTIVE),
        (ApiKey.ACTIVE, -1, None, ApiKey.EXPIRED),
        (ApiKey.ROTATING, None, 1, ApiKey.ROTATING),
        (ApiKey.ROTATING, None, -1, ApiKey.RETIRED),
        # Within its grace period but past its expiry: the key check refuses it.
        (ApiKey.ROTATING, -1, 1, ApiKey.EXPIRED),
    ],
)
def test_client_page_shows_the_state_the_key_check_acts_on(
    client_row, issued, state, expires, grace, shown
):
    key, plaintext = issued
    hours = {None: None} | {n: timezone.now() + timedelta(hours=n) for n in (-1, 1)}
    ApiKey.objects.filter(pk=key.pk).update(
        state=state, expires_at=hours[expires], grace_until=hours[grace]
    )
    keys.clear_cache()
    [row] = security_admin.key_rows(staff_user("vic.viewer", VIEW), client_row)
    assert row.state == shown
    usable = shown in (ApiKey.ACTIVE, ApiKey.ROTATING)
    assert (verify_key(plaintext) is not None) == usable


def test_an_edited_client_is_not_answered_from_the_caches(administrator, client_row, issued):
    _, plaintext = issued
    assert verify_key(plaintext).client.organization == "Riverbend Health"  # now cached
    data = {
        "name": client_row.name,
        "organization": "Riverbend Health Network",
        "community": "",
        "allowed_scopes": client_row.allowed_scopes,
        "status": ApiClient.ACTIVE,
        "contact": "",
    }
    assert administrator.post(page_url(client_row), data).status_code == 302
    assert verify_key(plaintext).client.organization == "Riverbend Health Network"
