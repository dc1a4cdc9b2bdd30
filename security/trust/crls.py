"""Certificate revocation lists: reading, checking, the one way to store them, and loading.

`store_crl` is the only writer of a CRL (refreshcrls, pki_publish_crl and pki_init_community
all come through it). It refuses a CRL its anchor did not sign, one past its nextUpdate, and one
older than the CRL already stored (a replayed old CRL could un-revoke a certificate), and it
holds the anchor's row locked while it compares and writes, so two writers at once cannot put an
older CRL over a newer one. `load_crl` checks a stored CRL again when the trust store loads it:
the database is not trusted to hold only what `store_crl` wrote.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from django.db import transaction
from django.utils import timezone

from ..models import RevocationList, TrustAnchor
from .certificates import CertificateError, load_pem_certificate

log = logging.getLogger(__name__)

PEM_MARKER = b"-----BEGIN X509 CRL-----"


class CrlError(Exception):
    """A CRL could not be read, trusted or stored; the message is safe to store and show."""


def parse_crl(data: bytes) -> x509.CertificateRevocationList:
    """A CRL from DER or PEM bytes."""
    try:
        if PEM_MARKER in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as error:
        raise CrlError("not a DER or PEM CRL") from error


def check_crl(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> None:
    """Raise unless `issuer` issued and signed `crl` and the CRL says when it expires."""
    if crl.issuer != issuer.subject:
        raise CrlError("CRL issuer does not match the anchor's subject")
    try:
        # A key that cannot sign (X25519...) makes this raise: refused below, so the cast holds.
        key = cast(CertificateIssuerPublicKeyTypes, issuer.public_key())
        signed = crl.is_signature_valid(key)
    except Exception as error:  # unsupported key or algorithm: not a CRL we can trust
        raise CrlError("CRL signature cannot be checked") from error
    if not signed:
        raise CrlError("CRL signature does not verify against the anchor's key")
    if crl.next_update_utc is None:
        raise CrlError("CRL has no nextUpdate")


def _refuse_expired(crl: x509.CertificateRevocationList, now: datetime) -> None:
    # check_crl has refused a CRL without nextUpdate before this runs.
    if crl.next_update_utc is None or crl.next_update_utc <= now:
        # Stored, it would fail every check all the same; refused, the old one stays with the
        # error beside it for the operator to see.
        raise CrlError("CRL is past its nextUpdate")


def anchor_certificate(anchor: TrustAnchor) -> x509.Certificate:
    """The anchor's certificate, as the CRL checks need it."""
    try:
        return load_pem_certificate(anchor.certificate_pem)
    except CertificateError as error:
        raise CrlError("anchor certificate does not parse") from error


# --- storing ------------------------------------------------------------------------------------


def store_crl(
    anchor: TrustAnchor, crl: x509.CertificateRevocationList, now: datetime | None = None
) -> RevocationList:
    """Check `crl` against `anchor` and make it the anchor's current CRL; CrlError if refused."""
    now = now or timezone.now()
    check_crl(crl, anchor_certificate(anchor))
    with transaction.atomic():
        if not _lock_anchor(anchor):
            raise CrlError("the trust anchor no longer exists")
        stored = RevocationList.objects.filter(issuer=anchor).first()
        # Named before expiry: an old CRL sent again is a replay, whatever its dates say.
        if stored is not None and stored.this_update and crl.last_update_utc < stored.this_update:
            raise CrlError("CRL is older: the server already holds a newer one")
        _refuse_expired(crl, now)
        row, _ = RevocationList.objects.update_or_create(issuer=anchor, defaults=_row(crl, now))
    _trust_changed()
    return row


def _lock_anchor(anchor: TrustAnchor) -> bool:
    """Lock the anchor's row until the transaction ends; False when it is gone.

    The anchor is locked, not the CRL row: before the first CRL there is no CRL row to lock,
    and two first stores would both find none.
    """
    locked = TrustAnchor.objects.select_for_update().filter(pk=anchor.pk).only("pk")
    return locked.first() is not None


def _row(crl: x509.CertificateRevocationList, now: datetime) -> dict[str, Any]:
    return {
        "crl_der": crl.public_bytes(Encoding.DER),
        "this_update": crl.last_update_utc,
        "next_update": crl.next_update_utc,
        "fetched_at": now,
        "last_attempt_at": now,
        "last_error": "",
    }


def record_failure(anchor: TrustAnchor, error: str, now: datetime | None = None) -> None:
    """Note a failed refresh on the anchor's CRL row; the CRL itself stays as it was."""
    now = now or timezone.now()
    log.warning("CRL refresh failed for anchor %s (%s): %s", anchor.pk, anchor.subject, error)
    with transaction.atomic():
        if _lock_anchor(anchor):  # a removed anchor needs no record
            RevocationList.objects.update_or_create(
                issuer=anchor, defaults={"last_attempt_at": now, "last_error": error[:500]}
            )


def _trust_changed() -> None:
    # Imported here: the trust store loads CRLs through this module.
    from .. import truststore

    # Again at commit: another thread may reload the old CRL before this one commits.
    truststore.invalidate()
    transaction.on_commit(truststore.invalidate)


# --- loading ------------------------------------------------------------------------------------


def load_crl(
    row: RevocationList | None, issuer: x509.Certificate
) -> x509.CertificateRevocationList | None:
    """The stored CRL of `issuer` when it is there and still checks out; None otherwise."""
    if row is None or not row.crl_der:
        return None
    try:
        crl = parse_crl(bytes(row.crl_der))
        check_crl(crl, issuer)
    except CrlError as error:
        log.error("stored CRL of anchor %s is not usable: %s", row.issuer_id, error)
        return None
    return crl


def has_current_crl(anchor: TrustAnchor, now: datetime) -> bool:
    """Whether a CRL is stored for `anchor` and `now` is before its nextUpdate (row data only)."""
    try:
        row = anchor.crl
    except RevocationList.DoesNotExist:
        return False
    return bool(row.crl_der) and row.next_update is not None and now < row.next_update
