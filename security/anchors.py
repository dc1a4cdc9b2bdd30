"""Trust communities and their CA certificates as trust anchors: the checks and the rows.

Shared by `addtrustanchor`, the admin and the community PKI commands, so all refuse the same
things and record the same events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

from cryptography import x509
from django.db import transaction

from . import truststore
from .keys import record_event
from .models import TrustAnchor, TrustCommunity
from .trust import chains
from .trust.certificates import CertificateError, fingerprint, load_pem_certificate, pem, subject


class AnchorError(ValueError):
    """The certificate cannot be registered as asked; the message says why."""


# A CharField always has a max_length; the stubs type it as optional for every Field.
CRL_SOURCE_MAX = cast(int, TrustAnchor._meta.get_field("crl_source").max_length)


@dataclass(frozen=True)
class Registration:
    anchor: TrustAnchor
    outcome: str  # "added", "crl-source-updated" or "unchanged"


def register_anchor(
    cert: x509.Certificate,
    community_slug: str,
    kind: str = TrustAnchor.ROOT,
    crl_source: str = "",
    community_name: str = "",
    *,
    actor: str,
) -> Registration:
    """Add `cert` to the community (created if new); re-registering may change its CRL source.
    Either is a KeyEvent naming `actor`."""
    require_ca(cert)
    crl_source = checked_crl_source(crl_source)
    with transaction.atomic():
        community, _ = TrustCommunity.objects.get_or_create(
            slug=community_slug, defaults={"name": community_name or community_slug}
        )
        existing = TrustAnchor.objects.filter(fingerprint_sha256=fingerprint(cert)).first()
        if existing is not None:
            registration = _update_existing(existing, community, crl_source, actor)
        else:
            registration = Registration(_create(cert, community, kind, crl_source, actor), "added")
    if registration.outcome != "unchanged":
        truststore.invalidate()
    return registration


def _create(
    cert: x509.Certificate, community: TrustCommunity, kind: str, crl_source: str, actor: str
) -> TrustAnchor:
    check_anchor(cert, community, kind)
    anchor = TrustAnchor.objects.create(
        community=community,
        kind=kind,
        certificate_pem=pem(cert),
        subject=subject(cert),
        fingerprint_sha256=fingerprint(cert),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        crl_source=crl_source,
    )
    source = describe_crl_source(crl_source)
    record_event(actor, "anchor-added", detail=f"{_named(anchor)}; CRL source {source}")
    return anchor


def _update_existing(
    anchor: TrustAnchor, community: TrustCommunity, crl_source: str, actor: str
) -> Registration:
    # Re-running with the same certificate is how an operator changes its CRL source; without
    # one it leaves the source as it is (clearing it is set_crl_source's, said explicitly).
    if anchor.community_id != community.pk:
        raise AnchorError(f"certificate already registered in {anchor.community.slug!r}")
    if crl_source and set_crl_source(anchor, crl_source, actor):
        return Registration(anchor, "crl-source-updated")
    return Registration(anchor, "unchanged")


def set_crl_source(anchor: TrustAnchor, source: str, actor: str) -> bool:
    """Where refreshcrls reads `anchor`'s CRL; blank means the CRL distribution points of the
    certificates it issued (security.crl.crl_sources). A change is a KeyEvent, before and after;
    returns whether anything changed."""
    source = checked_crl_source(source)
    with transaction.atomic():
        stored = TrustAnchor.objects.select_for_update().get(pk=anchor.pk)
        before = stored.crl_source
        if source != before:
            TrustAnchor.objects.filter(pk=anchor.pk).update(crl_source=source)
            detail = (
                f"{_named(stored)}; CRL source "
                f"{describe_crl_source(before)} -> {describe_crl_source(source)}"
            )
            record_event(actor, "anchor-crl-source-changed", detail=detail)
    anchor.crl_source = source
    if source != before:
        # The store's snapshot carries the anchors' rows; the next request re-reads them.
        transaction.on_commit(truststore.invalidate)
    return source != before


# What a community's page edits; `active` trusts or distrusts every anchor of it at once.
COMMUNITY_FIELDS = ("name", "slug", "description", "active")


def save_community(community: TrustCommunity, actor: str) -> TrustCommunity:
    """Create or change a community as the admin's form left it; a KeyEvent naming `actor` says
    what changed, and the trust store's snapshot is dropped once it commits."""
    with transaction.atomic():
        before = None
        if community.pk is not None:
            before = TrustCommunity.objects.select_for_update().filter(pk=community.pk).first()
        community.save()
        if before is None:
            record_event(actor, "community-added", detail=_community_fields(community))
        elif changed := _community_changes(before, community):
            record_event(actor, "community-changed", detail=f"{community.slug}: {changed}")
    # Deactivating a community must stop its certificates here at once, not after the cache.
    transaction.on_commit(truststore.invalidate)
    return community


def _community_fields(community: TrustCommunity) -> str:
    return f"{community.slug} ({community.name}); active {community.active}"


def _community_changes(before: TrustCommunity, after: TrustCommunity) -> str:
    changes = []
    for field in COMMUNITY_FIELDS:
        old, new = getattr(before, field), getattr(after, field)
        if old != new:
            # A description may be long: name its change, not its text.
            changes.append(field if field == "description" else f"{field} {old!r} -> {new!r}")
    return ", ".join(changes)


def checked_crl_source(source: str) -> str:
    """`source` as stored: an http(s) URL, a file:// URL or an absolute path, as
    security.crl.fetch reads them, or "" for the certificates' distribution points."""
    source = (source or "").strip()
    if not source:
        return ""
    if len(source) > CRL_SOURCE_MAX:
        raise AnchorError(f"a CRL source is at most {CRL_SOURCE_MAX} characters")
    if source.startswith(("http://", "https://")):
        parts = urlsplit(source)
        if not parts.hostname:
            raise AnchorError("a CRL URL needs a host")
        # The source is shown in the admin and the event log; a password has no place there.
        if parts.username or parts.password:
            raise AnchorError("a CRL URL must not carry a user name or password")
        return source
    if not source.removeprefix("file://").startswith("/"):
        raise AnchorError("a CRL source is an http(s) URL, a file:// URL or an absolute path")
    return source


def describe_crl_source(source: str) -> str:
    return source or "(distribution points)"


def _named(anchor: TrustAnchor) -> str:
    # Short and unambiguous: the fingerprint prefix the admin lists, and the community.
    return f"{anchor.kind} {anchor.fingerprint_sha256[:16]} in {anchor.community.slug}"


def check_anchor(cert: x509.Certificate, community: TrustCommunity, kind: str) -> None:
    """What a new anchor must be: a CA, and a self-signed root or chained to a root."""
    require_ca(cert)
    if kind == TrustAnchor.ROOT:
        require_self_signed(cert)
    else:
        require_chains_to_root(cert, community)


def require_ca(cert: x509.Certificate) -> None:
    problem = chains.ca_problem(cert)
    if problem is not None:
        raise AnchorError(problem)


def require_self_signed(cert: x509.Certificate) -> None:
    if not chains.is_self_signed(cert):
        raise AnchorError("a root must be self-signed; use --kind intermediate")


def require_chains_to_root(cert: x509.Certificate, community: TrustCommunity) -> None:
    """An intermediate must be signed, directly or through registered intermediates, by a root
    of the same community."""
    anchors = [(a.kind, _certificate(a)) for a in community.anchors.all()]
    roots = [c for kind, c in anchors if kind == TrustAnchor.ROOT]
    intermediates = [c for kind, c in anchors if kind == TrustAnchor.INTERMEDIATE]
    if not roots:
        raise AnchorError(f"community {community.slug!r} has no root yet; add it first")
    if not chains.reaches_root(cert, roots, intermediates):
        raise AnchorError(f"intermediate does not chain to a root of {community.slug!r}")


def _certificate(anchor: TrustAnchor) -> x509.Certificate:
    try:
        return load_pem_certificate(anchor.certificate_pem)
    except CertificateError as error:
        raise AnchorError(f"stored anchor {anchor.pk} does not parse") from error
