"""Endpoint certificates in the search index: found by an indexed query, never by reading JSON.

The VhDir digital certificate extensions of an Endpoint (see admin_certificates.py) are filed
when the Endpoint is indexed: by `indexing.extract`, so every write, bulk load and reindex keeps
them current and a delete removes them, like any search index row. Two internal parameter names
carry them; no search can name either (a SearchParameter code starts with a letter):

    TokenIndex  CERTIFICATE_PARAM  code = the certificate's SHA-256 fingerprint (canonical form)
    DateIndex   EXPIRATION_PARAM   the period of its expirationDate

Security reads them through security/directory_port.py (directory/security_facts.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from security.trust.certificates import CertificateError, fingerprint, load_certificate

from .admin_certificates import certificate_extensions, sub_value, sub_values
from .models import DateIndex, TokenIndex
from .search.dates import interval_of

RESOURCE_TYPE = "Endpoint"
CERTIFICATE_PARAM = "_certificate"
EXPIRATION_PARAM = "_certificate-expiration"
# valueDate is a FHIR date: a year, a month or a day, never a time.
_FHIR_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


def rows(resource_type: str, content: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """(table, param, values) index rows for the certificates of an Endpoint; none otherwise.

    Stored JSON may hold anything in an extension: what does not read is skipped, never an error
    that would refuse the write.
    """
    if resource_type != RESOURCE_TYPE:
        return
    for extension in certificate_extensions(content):
        found = _fingerprint(sub_value(extension, "certificate", "valueString"))
        if found is not None:
            yield TokenIndex, CERTIFICATE_PARAM, ("", found)
        for value in sub_values(extension, "expirationDate", "valueDate"):
            period = _period(value)
            if period is not None:
                yield DateIndex, EXPIRATION_PARAM, period


def _fingerprint(encoded: object) -> str | None:
    if not isinstance(encoded, str) or not encoded.strip():
        return None
    try:
        return fingerprint(load_certificate(encoded))
    except CertificateError:
        return None


def _period(value: object) -> tuple[datetime, datetime] | None:
    if not isinstance(value, str) or not _FHIR_DATE.fullmatch(value.strip()):
        return None
    return interval_of(value.strip())


def endpoints_with_certificate(canonical_fingerprint: str) -> list[str]:
    """The logical ids of live Endpoints carrying the certificate with this fingerprint."""
    found = certificate_rows(canonical_fingerprint)
    return sorted(set(found.values_list("resource__logical_id", flat=True)))


def certificate_expiries(start: datetime | None, end: datetime) -> Iterator[tuple[str, datetime]]:
    """(Endpoint logical id, expiration) of each certificate expiring in [start, end] (any time
    up to `end` when start is None). A partial date counts from its first day: a warning comes
    early rather than late."""
    found = expiry_rows(start, end).order_by("low", "resource_id")
    yield from found.values_list("resource__logical_id", "low")


def certificate_rows(canonical_fingerprint: str) -> QuerySet[TokenIndex]:
    """The index rows of one certificate (token_code_idx answers this)."""
    return TokenIndex.objects.filter(
        resource_type=RESOURCE_TYPE, param=CERTIFICATE_PARAM, code=canonical_fingerprint, system=""
    )


def expiry_rows(start: datetime | None, end: datetime) -> QuerySet[DateIndex]:
    """The index rows of certificates expiring in the window (date_low_idx answers this)."""
    found = DateIndex.objects.filter(resource_type=RESOURCE_TYPE, param=EXPIRATION_PARAM)
    found = found.filter(low__lte=end)
    return found if start is None else found.filter(low__gte=start)
