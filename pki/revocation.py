"""Revoking certificates and publishing the CA's signed CRL.

The state lives in revoked.json next to the CA: {"crl_number": N, "revoked": [{"serial": hex,
"date": ISO 8601, "reason": name}]}. Publishing signs a fresh CRL from it, with a CRL number one
higher than the last, and replaces crl.der and crl.pem atomically.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from security.trust.chains import issued_by

from . import PkiError
from .files import replace
from .layout import CaDirectory, parse_serial, serial_hex

DEFAULT_CRL_DAYS = 7
# RFC 5280 reason names; certificateHold is left out: a hold that is forgotten is a silent hole.
REASONS = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "cACompromise": x509.ReasonFlags.ca_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "privilegeWithdrawn": x509.ReasonFlags.privilege_withdrawn,
}


@dataclass(frozen=True)
class Revoked:
    serial: int
    date: dt.datetime
    reason: str


@dataclass
class RevocationState:
    crl_number: int
    revoked: list[Revoked]

    def find(self, serial: int) -> Revoked | None:
        return next((r for r in self.revoked if r.serial == serial), None)


def load_state(ca: CaDirectory) -> RevocationState:
    if not ca.revoked_file.exists():
        return RevocationState(crl_number=0, revoked=[])
    try:
        raw = json.loads(ca.revoked_file.read_text())
        revoked = [
            Revoked(parse_serial(r["serial"]), dt.datetime.fromisoformat(r["date"]), r["reason"])
            for r in raw["revoked"]
        ]
        return RevocationState(int(raw["crl_number"]), revoked)
    except (ValueError, KeyError, TypeError) as error:
        raise PkiError(f"{ca.revoked_file} is not a revocation state file") from error


def save_state(ca: CaDirectory, state: RevocationState) -> None:
    raw = {
        "crl_number": state.crl_number,
        "revoked": [
            {"serial": serial_hex(r.serial), "date": r.date.isoformat(), "reason": r.reason}
            for r in state.revoked
        ],
    }
    replace(ca.revoked_file, (json.dumps(raw, indent=2) + "\n").encode())


def revoke(ca: CaDirectory, serial: int, reason: str = "unspecified") -> tuple[Revoked, bool]:
    """Add `serial` (one this CA issued) to the revocation state; True if newly revoked."""
    if reason not in REASONS:
        raise PkiError(f"unknown reason {reason!r}; use one of {', '.join(REASONS)}")
    if ca.issued_certificate(serial) is None:
        raise PkiError(f"this CA issued no certificate with serial {serial_hex(serial)}")
    with ca.locked():
        state = load_state(ca)
        existing = state.find(serial)
        if existing is not None:
            return existing, False
        entry = Revoked(serial, _now(), reason)
        state.revoked.append(entry)
        save_state(ca, state)
    return entry, True


def serial_of_issued(ca: CaDirectory, cert: x509.Certificate) -> int:
    """The serial of `cert`, after checking this CA really issued it."""
    if not issued_by(cert, ca.certificate()):  # wrong issuer name or signature: not ours
        raise PkiError("that certificate was not issued by this CA")
    return cert.serial_number


def publish_crl(ca: CaDirectory, days: int = DEFAULT_CRL_DAYS) -> x509.CertificateRevocationList:
    """Sign a CRL of everything revoked, valid `days`, and write crl.der and crl.pem."""
    if days < 1:
        raise PkiError("a CRL must be valid for at least one day")
    with ca.locked():
        state = load_state(ca)
        state.crl_number += 1
        crl = _sign_crl(ca, state, days)
        replace(ca.crl_der_file, crl.public_bytes(Encoding.DER))
        replace(ca.crl_pem_file, crl.public_bytes(Encoding.PEM))
        # Saved last: a failed write above leaves the number free to be used again.
        save_state(ca, state)
    return crl


def _sign_crl(ca: CaDirectory, state: RevocationState, days: int) -> x509.CertificateRevocationList:
    ca_cert, now = ca.certificate(), _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=days))
        .add_extension(x509.CRLNumber(state.crl_number), critical=False)
        .add_extension(_authority_key_id(ca_cert), critical=False)
    )
    for entry in state.revoked:
        builder = builder.add_revoked_certificate(_revoked_entry(entry))
    return builder.sign(ca.private_key(), hashes.SHA256())


def _revoked_entry(entry: Revoked) -> x509.RevokedCertificate:
    builder = x509.RevokedCertificateBuilder().serial_number(entry.serial)
    builder = builder.revocation_date(entry.date)
    # RFC 5280 asks that "unspecified" be expressed by leaving the reason code out.
    if entry.reason != "unspecified":
        builder = builder.add_extension(x509.CRLReason(REASONS[entry.reason]), critical=False)
    return builder.build()


def _authority_key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)
