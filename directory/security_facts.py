"""The directory's side of security.directory_port: resource types and Endpoint certificates."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from .registry import RESOURCE_TYPES


class DirectoryFacts:
    """Answers security's questions from the registry and the search index
    (directory/certificate_index.py)."""

    def resource_types(self) -> Sequence[str]:
        return RESOURCE_TYPES

    def endpoint_certificate_expiries(
        self, start: datetime | None, end: datetime
    ) -> Iterator[tuple[str, datetime]]:
        from .certificate_index import certificate_expiries  # models load after the registry

        return certificate_expiries(start, end)

    def endpoints_with_certificate(self, fingerprint: str) -> list[str]:
        from .certificate_index import endpoints_with_certificate

        return endpoints_with_certificate(fingerprint)
