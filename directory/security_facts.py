"""The directory's side of security.directory_port: resource types and Endpoint certificates."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from .registry import RESOURCE_TYPES


class DirectoryFacts:
    """Answers security's questions from the registry and the stored resources."""

    def resource_types(self) -> Sequence[str]:
        return RESOURCE_TYPES

    def endpoints_mentioning(self, text: str) -> Iterator[tuple[str, str]]:
        from .models import Resource  # models load after the app registry is ready

        endpoints = Resource.objects.filter(
            resource_type="Endpoint", deleted=False, content__contains=text
        ).only("logical_id", "content")
        for endpoint in endpoints.iterator():
            yield endpoint.logical_id, endpoint.live_content()
