"""What security needs from the directory, without importing it (README, "Architecture").

Security sits below the directory: the directory app registers a provider here when Django
starts (directory/apps.py), and security asks through it. Unregistered, every question fails
loudly rather than answering "nothing", which would quietly refuse every scope or hide
expiring certificates.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Protocol


class DirectoryFacts(Protocol):
    """The directory's answers security relies on."""

    def resource_types(self) -> Sequence[str]:
        """Every resource type the directory serves, in a stable order."""

    def endpoint_certificate_expiries(
        self, start: datetime | None, end: datetime
    ) -> Iterator[tuple[str, datetime]]:
        """(logical id, expiration) of each certificate on a live Endpoint expiring in
        [start, end], or at any time up to `end` when start is None; an indexed query."""

    def endpoints_with_certificate(self, fingerprint: str) -> list[str]:
        """Logical ids of live Endpoints carrying the certificate with this canonical SHA-256
        fingerprint (security.trust.certificates.fingerprint); an indexed query."""


_provider: DirectoryFacts | None = None


def register(provider: DirectoryFacts) -> None:
    """Install the directory's provider (once per process, from its AppConfig.ready)."""
    global _provider
    _provider = provider


def directory() -> DirectoryFacts:
    """The registered provider; RuntimeError when the directory app is not installed."""
    if _provider is None:
        raise RuntimeError("No directory registered with security.directory_port")
    return _provider
