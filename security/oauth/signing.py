"""The server's token signing keys: ES256, private half encrypted in the database.

Why the database and not a key file: every worker and every replica of the service must sign
with, and publish, the same keys, and a rotation must reach all of them at once without shipping
files. The private key is encrypted with Fernet (cryptography) under a key derived (HKDF) from
OAUTH_SIGNING_KEY_SECRET, so a database dump alone cannot sign tokens; it is erased when the key
retires. Rotation keeps the old public key in the JWKS until every token it signed has expired.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from datetime import timedelta

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from joserfc.jwk import ECKey, KeySet

from ..keys import record_event
from ..models import SigningKey
from . import config

log = logging.getLogger(__name__)

HKDF_INFO = b"fhir-directory oauth signing key encryption"


class SigningKeyUnavailable(Exception):
    """No usable signing key (e.g. OAUTH_SIGNING_KEY_SECRET changed since it was stored)."""


def _fernet() -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(
        settings.OAUTH_SIGNING_KEY_SECRET.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def _new_key_row() -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    kid = secrets.token_urlsafe(12)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = ECKey.import_key(private.public_key(), parameters={"kid": kid, "use": "sig"})
    return SigningKey.objects.create(
        kid=kid,
        algorithm=config.TOKEN_ALGORITHM,
        private_key_encrypted=_fernet().encrypt(pem).decode("ascii"),
        public_jwk=json.dumps({**public.as_dict(private=False), "alg": config.TOKEN_ALGORITHM}),
    )


def current_key() -> ECKey:
    """The active private key, created on first use."""
    row = SigningKey.objects.filter(state=SigningKey.ACTIVE).order_by("-created").first()
    if row is None:
        with transaction.atomic():
            # Two racing first requests may each make one: both are published, the newest signs.
            row = _locked_active() or _new_key_row()
            record_event("system", "signing-key-created", detail=f"kid {row.kid}")
    try:
        pem = _fernet().decrypt(row.private_key_encrypted.encode("ascii"))
    except InvalidToken:
        log.error("signing key %s cannot be decrypted with OAUTH_SIGNING_KEY_SECRET", row.kid)
        raise SigningKeyUnavailable from None
    return ECKey.import_key(pem, parameters={"kid": row.kid})


def _locked_active() -> SigningKey | None:
    rows = SigningKey.objects.select_for_update().filter(state=SigningKey.ACTIVE)
    return rows.order_by("-created").first()


def published_rows() -> QuerySet[SigningKey]:
    now = timezone.now()
    return SigningKey.objects.filter(
        Q(state=SigningKey.ACTIVE) | Q(state=SigningKey.RETIRING, publish_until__gt=now)
    ).order_by("-created")


def public_key_set() -> KeySet:
    """The keys tokens may be verified with: the active key and those still retiring."""
    return KeySet.import_key_set({"keys": [json.loads(row.public_jwk) for row in published_rows()]})


def jwks_document() -> dict:
    return {"keys": [json.loads(row.public_jwk) for row in published_rows()]}


def overlap() -> timedelta:
    """How long a retired key stays published: the longest a token it signed can live."""
    return timedelta(seconds=config.access_token_lifetime() + settings.SECURITY_JWT_LEEWAY_SECONDS)


def rotate(actor: str) -> SigningKey:
    """A new active key; the old one stops signing now and is published for the overlap."""
    now = timezone.now()
    with transaction.atomic():
        old = list(SigningKey.objects.select_for_update().filter(state=SigningKey.ACTIVE))
        SigningKey.objects.filter(pk__in=[row.pk for row in old]).update(
            state=SigningKey.RETIRING, private_key_encrypted="", publish_until=now + overlap()
        )
        # Keys whose overlap has ended verify nothing any more.
        SigningKey.objects.filter(state=SigningKey.RETIRING, publish_until__lte=now).delete()
        new = _new_key_row()
        retired = ", ".join(row.kid for row in old) or "none"
        record_event(actor, "signing-key-rotated", detail=f"new kid {new.kid}; retiring {retired}")
    return new
