"""What security needs from the directory, without importing it (README, "Architecture").

Security sits below the directory: the directory app registers a provider here when Django
starts (directory/apps.py), and security asks through it. Unregistered, every question fails
loudly rather than answering "no resource types", which would quietly refuse every scope.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol


class DirectoryFacts(Protocol):
    """The directory's answers security relies on."""

    def resource_types(self) -> Sequence[str]:
        """Every resource type the directory serves, in a stable order."""

    def endpoints_mentioning(self, text: str) -> Iterator[tuple[str, str]]:
        """(logical id, stored JSON) of live Endpoints whose JSON contains `text`."""


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
