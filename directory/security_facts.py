"""The directory's side of security.directory_port: Endpoint certificates, from the index."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime


class DirectoryFacts:
    """Answers security's questions from the search index (directory/certificate_index.py)."""

    def endpoint_certificate_expiries(
        self, start: datetime | None, end: datetime
    ) -> Iterator[tuple[str, datetime]]:
        from .certificate_index import certificate_expiries  # models load after the registry

        return certificate_expiries(start, end)

    def endpoints_with_certificate(self, fingerprint: str) -> list[str]:
        from .certificate_index import endpoints_with_certificate

        return endpoints_with_certificate(fingerprint)
