"""API client service: creation, identities typed or read from a certificate, suspension."""

import pytest
from cryptography.hazmat.primitives import hashes

from security import keys
from security.clients import (
    ClientError,
    add_identity,
    create_client,
    reactivate_client,
    suspend_client,
)
from security.keys import issue_key, verify_key
from security.models import ApiClient, CertificateIdentity, KeyEvent, TrustCommunity

from .factories import CERTIFICATE_NOT_AFTER as NOT_AFTER
from .factories import ApiClientFactory, make_certificate

ACTOR = "test:alice"


@pytest.fixture(autouse=True)
def _fresh_process_state():
    keys.clear_cache()
    yield
    keys.clear_cache()


def test_create_client_records_an_event(db):
    community = TrustCommunity.objects.create(name="Community A", slug="community-a")
    client = create_client(
        "Clinic", "Example Clinic", community, "  system/Practitioner.rs   user/*.rs ", actor=ACTOR
    )
    client.refresh_from_db()
    assert client.community == community
    assert client.allowed_scopes == "system/Practitioner.rs user/*.rs"
    assert client.status == ApiClient.ACTIVE
    event = KeyEvent.objects.get()
    assert (event.actor, event.action, event.client_id) == (ACTOR, "client-created", client.pk)


def test_duplicate_or_empty_client_name_is_refused(db):
    create_client("Clinic", actor=ACTOR)
    with pytest.raises(ClientError):
        create_client("Clinic", actor=ACTOR)
    with pytest.raises(ClientError):
        create_client("  ", actor=ACTOR)
    assert ApiClient.objects.count() == 1


@pytest.mark.parametrize(
    "kind, typed, stored",
    [
        ("dns", "Client.Example.ORG.", "client.example.org"),
        ("fingerprint", "AB:" * 31 + "AB", "ab" * 32),
        ("subject", " CN=Client A,O=Example Clinic ", "CN=Client A,O=Example Clinic"),
    ],
)
def test_typed_identities_are_normalised(db, kind, typed, stored):
    client = ApiClientFactory()
    [identity] = add_identity(client, kind, value=typed, actor=ACTOR)
    assert (identity.kind, identity.value, identity.not_after) == (kind, stored, None)
    event = KeyEvent.objects.get(action="identity-added")
    assert event.detail == f"{kind}: {stored}"


@pytest.mark.parametrize(
    "kind, typed",
    [
        ("dns", "not a name"),
        ("dns", "-bad.example.org"),
        ("dns", "*.example.org"),  # the certificate check never matches wildcards
        ("fingerprint", "abc"),
        ("fingerprint", "zz" * 32),
        ("subject", ""),
        ("email", "x@example.org"),
    ],
)
def test_bad_typed_identities_are_refused(db, kind, typed):
    client = ApiClientFactory()
    with pytest.raises(ClientError):
        add_identity(client, kind, value=typed, actor=ACTOR)
    assert not CertificateIdentity.objects.exists()


def test_certificate_upload_takes_every_san_dns_name_but_wildcards(db):
    client = ApiClientFactory()
    _, pem = make_certificate(dns_names=("a.example.org", "B.Example.org", "*.example.org"))
    identities = add_identity(client, "dns", certificate_pem=pem, actor=ACTOR)
    assert [i.value for i in identities] == ["a.example.org", "b.example.org"]
    for identity in identities:
        assert identity.not_after == NOT_AFTER
        assert identity.certificate_pem == pem


def test_certificate_upload_takes_subject_and_fingerprint(db):
    client = ApiClientFactory()
    cert, pem = make_certificate()
    [subject] = add_identity(client, "subject", certificate_pem=pem, actor=ACTOR)
    [fingerprint] = add_identity(client, "fingerprint", certificate_pem=pem, actor=ACTOR)
    assert subject.value == "CN=Client A,O=Example Clinic"
    assert fingerprint.value == cert.fingerprint(hashes.SHA256()).hex()
    assert len(fingerprint.value) == 64


def test_certificate_without_san_cannot_give_dns_identities(db):
    client = ApiClientFactory()
    _, pem = make_certificate(dns_names=())
    with pytest.raises(ClientError):
        add_identity(client, "dns", certificate_pem=pem, actor=ACTOR)


def test_garbage_instead_of_a_certificate_is_refused(db):
    client = ApiClientFactory()
    with pytest.raises(ClientError):
        add_identity(client, "fingerprint", certificate_pem="-----BEGIN nonsense", actor=ACTOR)


def test_an_identity_belongs_to_one_client_only(db):
    first, second = ApiClientFactory(), ApiClientFactory()
    add_identity(first, "dns", value="shared.example.org", actor=ACTOR)
    with pytest.raises(ClientError):
        add_identity(second, "dns", value="shared.example.org", actor=ACTOR)
    assert CertificateIdentity.objects.get().client == first


def test_partial_certificate_identities_roll_back(db):
    first, second = ApiClientFactory(), ApiClientFactory()
    add_identity(first, "dns", value="b.example.org", actor=ACTOR)
    _, pem = make_certificate(dns_names=("a.example.org", "b.example.org"))
    with pytest.raises(ClientError):
        add_identity(second, "dns", certificate_pem=pem, actor=ACTOR)
    assert not CertificateIdentity.objects.filter(client=second).exists()


def test_suspend_and_reactivate_take_effect_in_this_process_at_once(db, settings):
    settings.SECURITY_CACHE_SECONDS = 60
    client = ApiClientFactory()
    _, plaintext = issue_key(client, ACTOR)
    assert verify_key(plaintext).client.status == ApiClient.ACTIVE  # cached now

    suspend_client(client, ACTOR, "unpaid")
    assert verify_key(plaintext).client.status == ApiClient.SUSPENDED
    client.refresh_from_db()
    assert client.status == ApiClient.SUSPENDED

    reactivate_client(client, ACTOR, "paid")
    assert verify_key(plaintext).client.status == ApiClient.ACTIVE
    events = list(KeyEvent.objects.filter(client=client).values_list("action", "reason"))
    assert events[-2:] == [("client-suspended", "unpaid"), ("client-reactivated", "paid")]
