"""The shared test PKI is what the other tests assume it is."""

import pytest
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from .pki import NOW, cert_headers, http_headers


def verifier(community):
    return PolicyBuilder().store(Store([community.root.cert])).time(NOW).build_client_verifier()


def test_valid_leaf_chains_to_its_community_root(pki):
    chain = verifier(pki.a).verify(pki.valid.cert, [pki.a.intermediate.cert]).chain
    assert [c.subject for c in chain] == [
        pki.valid.cert.subject,
        pki.a.intermediate.cert.subject,
        pki.a.root.cert.subject,
    ]


@pytest.mark.parametrize("name", ["expired", "not_yet_valid", "wrong_eku", "server"])
def test_bad_leaves_fail_library_verification(pki, name):
    with pytest.raises(VerificationError):
        verifier(pki.a).verify(pki.a.leaves[name].cert, [pki.a.intermediate.cert])


def test_communities_do_not_cross_trust(pki):
    with pytest.raises(VerificationError):
        verifier(pki.a).verify(pki.valid_b.cert, [pki.b.intermediate.cert])


def test_crls(pki):
    revoked = pki.revoked.cert.serial_number
    assert pki.a.intermediate_crl.get_revoked_certificate_by_serial_number(revoked)
    assert pki.a.intermediate_crl.is_signature_valid(pki.a.intermediate.cert.public_key())
    assert not pki.a.forged_intermediate_crl.is_signature_valid(
        pki.a.intermediate.cert.public_key()
    )
    assert pki.a.stale_intermediate_crl.next_update_utc < NOW


def test_header_helpers(pki):
    assert set(http_headers(pki.valid)) == {"X-SSL-Client-Cert", "X-SSL-Client-Verify"}
    assert cert_headers(None)["HTTP_X_SSL_CLIENT_VERIFY"] == "NONE"
    assert "HTTP_X_FORWARDED_CLIENT_CERT" in cert_headers(pki.valid, fmt="envoy")


def test_trust_community_rows(trust_community, cert_client):
    assert trust_community.anchors.count() == 2
    assert cert_client.identities.get().value == "client-a.example.org"
