"""JWT ids already used, shared by every worker through the database."""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import UsedAssertion


class Replayed(Exception):
    """The JWT id was used before and has not expired yet."""


def remember(purpose: str, issuer: str, jti: str, expires_at: datetime) -> None:
    """Record the jti, or raise Replayed; the unique index decides, so two workers cannot race."""
    digest = hashlib.sha256("\x00".join((purpose, issuer, jti)).encode()).hexdigest()
    UsedAssertion.objects.filter(expires_at__lt=timezone.now()).delete()
    try:
        with transaction.atomic():
            UsedAssertion.objects.create(digest=digest, expires_at=expires_at)
    except IntegrityError:
        raise Replayed from None
