"""Management commands for clients and keys: what they print, what they change, what they log."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from security import keys
from security.keys import KEY_PATTERN, verify_key
from security.models import ApiClient, ApiKey, CertificateIdentity, KeyEvent, TrustCommunity

from .factories import ApiClientFactory, ApiKeyFactory, make_certificate

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_process_state(monkeypatch):
    keys.clear_cache()
    monkeypatch.setattr(keys.getpass, "getuser", lambda: "operator")
    yield
    keys.clear_cache()


def run(*args):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def issued_key(stdout):
    """The one line of stdout that is a key; fails unless there is exactly one."""
    [line] = [line for line in stdout.splitlines() if KEY_PATTERN.search(line)]
    assert KEY_PATTERN.fullmatch(line)
    return line


def test_createclient_with_typed_identities():
    TrustCommunity.objects.create(name="Community A", slug="community-a")
    fingerprint = "AB" * 32
    out, _ = run(
        "createclient",
        "Clinic",
        "--organization=Example Clinic",
        "--community=community-a",
        "--scopes=system/Practitioner.rs system/Location.rs",
        "--dns",
        "a.example.org",
        "b.example.org",
        "--subject=CN=Clinic,O=Example",
        f"--fingerprint={fingerprint}",
    )
    client = ApiClient.objects.get(name="Clinic")
    assert client.community.slug == "community-a"
    assert client.scope_set == {"system/Practitioner.rs", "system/Location.rs"}
    identities = set(client.identities.values_list("kind", "value"))
    assert identities == {
        ("dns", "a.example.org"),
        ("dns", "b.example.org"),
        ("subject", "CN=Clinic,O=Example"),
        ("fingerprint", fingerprint.lower()),
    }
    assert "Created client Clinic" in out
    actors = set(KeyEvent.objects.values_list("actor", flat=True))
    assert actors == {"command:operator"}


def test_createclient_from_a_certificate_file(tmp_path):
    cert, pem = make_certificate(dns_names=("c.example.org",))
    path = tmp_path / "client.pem"
    path.write_text(pem)
    run("createclient", "Clinic", f"--certificate={path}", "--certificate-identity", "dns")
    identity = CertificateIdentity.objects.get()
    assert (identity.kind, identity.value) == ("dns", "c.example.org")
    assert identity.not_after == cert.not_valid_after_utc


def test_createclient_is_all_or_nothing():
    ApiClientFactory(name="Other")
    run("createclient", "Other2", "--dns", "taken.example.org")
    with pytest.raises(CommandError):
        run("createclient", "Clinic", "--dns", "new.example.org", "taken.example.org")
    assert not ApiClient.objects.filter(name="Clinic").exists()
    with pytest.raises(CommandError):
        run("createclient", "Clinic", "--community=nowhere")


def test_issuekey_prints_the_key_once_on_stdout_and_it_works():
    client = ApiClientFactory(name="Clinic")
    out, err = run("issuekey", "Clinic", "--expires-days=30")
    plaintext = issued_key(out)
    assert out.count(plaintext) == 1
    assert plaintext not in err
    assert "will not be shown again" in err
    key = verify_key(plaintext)
    assert key.client == client
    expected = timezone.now() + timedelta(days=30)
    assert abs((key.expires_at - expected).total_seconds()) < 60
    event = KeyEvent.objects.get(action="key-issued")
    assert (event.actor, event.key_prefix) == ("command:operator", key.prefix)


def test_issuekey_for_an_unknown_client_fails():
    with pytest.raises(CommandError):
        run("issuekey", "Nobody")


def test_rotatekey_prints_a_working_new_key_and_keeps_the_old_for_the_grace():
    old = ApiKeyFactory(client=ApiClientFactory(name="Clinic"))
    out, err = run("rotatekey", old.prefix, "--grace=24h", "--reason=annual")
    new_plaintext = issued_key(out)
    assert verify_key(new_plaintext).prefix != old.prefix
    assert verify_key(old.plaintext).prefix == old.prefix
    old.refresh_from_db()
    assert old.state == ApiKey.ROTATING
    assert "will not be shown again" in err


def test_rotatekey_with_no_grace_ends_the_old_key_now():
    old = ApiKeyFactory()
    run("rotatekey", old.prefix, "--grace=0", "--reason=leaked")
    assert verify_key(old.plaintext) is None


def test_rotatekey_refuses_other_grace_periods():
    old = ApiKeyFactory()
    with pytest.raises(CommandError):
        run("rotatekey", old.prefix, "--grace=2h", "--reason=x")


def test_retirekey_needs_a_reason_and_is_immediate():
    key = ApiKeyFactory()
    assert verify_key(key.plaintext) is not None
    with pytest.raises(CommandError):
        run("retirekey", key.prefix, "--reason=  ")
    assert verify_key(key.plaintext) is not None
    run("retirekey", key.prefix, "--reason=compromised")
    assert verify_key(key.plaintext) is None
    event = KeyEvent.objects.get(action="key-retired")
    assert (event.actor, event.reason) == ("command:operator", "compromised")
    with pytest.raises(CommandError):
        run("retirekey", "unknownpfx", "--reason=x")


def test_listkeys_shows_prefixes_and_states_but_never_secrets():
    clinic = ApiClientFactory(name="Clinic")
    mine = [ApiKeyFactory(client=clinic), ApiKeyFactory(client=clinic, state=ApiKey.RETIRED)]
    other = ApiKeyFactory(client=ApiClientFactory(name="Other"))
    keys.record_use(mine[0], "192.0.2.7")

    out, _ = run("listkeys", "Clinic")
    for key in mine:
        assert key.prefix in out
        assert key.plaintext not in out
        assert key.plaintext.split("_", 2)[2][:8] not in out
        assert key.key_hash not in out
    assert other.prefix not in out
    assert "retired" in out
    assert "192.0.2.7" in out
    assert not KEY_PATTERN.search(out)

    everything, _ = run("listkeys")
    assert other.prefix in everything
    assert other.plaintext not in everything


def test_expirekeys_settles_lapsed_keys():
    now = timezone.now()
    rotating = ApiKeyFactory(state=ApiKey.ROTATING, grace_until=now - timedelta(hours=1))
    active = ApiKeyFactory(expires_at=now - timedelta(hours=1))
    out, _ = run("expirekeys")
    assert "Retired 1" in out
    assert "expired 1" in out
    states = dict(ApiKey.objects.values_list("pk", "state"))
    assert states == {rotating.pk: ApiKey.RETIRED, active.pk: ApiKey.EXPIRED}
    assert set(KeyEvent.objects.values_list("actor", flat=True)) == {"command:operator"}
