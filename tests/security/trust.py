"""Trust material in the database for tests: a PKI community's anchors and CRLs, and clients."""

from __future__ import annotations

from .pki import Community, crl_der


def register_community(community: Community, crls: bool = True):
    """Database rows for a PKI community: TrustCommunity, its root and intermediate anchors, and
    (with `crls`) their fresh CRLs. Returns the TrustCommunity."""
    from security.models import TrustAnchor, TrustCommunity

    row = TrustCommunity.objects.create(
        name=f"Community {community.slug.upper()}", slug=f"community-{community.slug}"
    )
    for kind, issued, crl in [
        (TrustAnchor.ROOT, community.root, community.root_crl),
        (TrustAnchor.INTERMEDIATE, community.intermediate, community.intermediate_crl),
    ]:
        anchor = TrustAnchor.objects.create(
            community=row,
            kind=kind,
            certificate_pem=issued.pem,
            subject=issued.subject,
            fingerprint_sha256=issued.fingerprint,
            not_before=issued.cert.not_valid_before_utc,
            not_after=issued.cert.not_valid_after_utc,
        )
        if crls:
            store_crl(anchor, crl)
    return row


def store_crl(anchor, crl):
    """Store `crl` as `anchor`'s current CRL, as a successful refresh would."""
    from django.utils import timezone

    from security.models import RevocationList

    RevocationList.objects.update_or_create(
        issuer=anchor,
        defaults={
            "crl_der": crl_der(crl),
            "this_update": crl.last_update_utc,
            "next_update": crl.next_update_utc,
            "fetched_at": timezone.now(),
            "last_attempt_at": timezone.now(),
            "last_error": "",
        },
    )


def register_client(name, community=None, status="active", **identities):
    """An ApiClient with certificate identities, e.g. dns="a.example.org", fingerprint="ab…"."""
    from security.models import ApiClient, CertificateIdentity

    client = ApiClient.objects.create(name=name, community=community, status=status)
    for kind, value in identities.items():
        CertificateIdentity.objects.create(client=client, kind=kind, value=value)
    return client
