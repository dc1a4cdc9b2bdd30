"""Stored resource JSON carried as text into a response, so it is not parsed to be re-encoded."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any


class StoredResource(Mapping):
    """A resource's stored JSON text (what storage wrote: compact, valid JSON), with its type.

    Bundles hold it where a resource goes; the API's renderer splices `text` into the response
    as is. Its type is at hand without parsing, for the final authorization check. Read as a
    mapping it is the parsed resource (parsed on first use), for code that looks inside.
    """

    __slots__ = ("_parsed", "resource_type", "text")

    def __init__(self, resource_type: str, text: str) -> None:
        self.resource_type = resource_type
        self.text = text
        self._parsed: dict | None = None

    def parsed(self) -> dict:
        if self._parsed is None:
            self._parsed = json.loads(self.text)
        return self._parsed

    def __getitem__(self, key: str) -> Any:
        return self.parsed()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.parsed())

    def __len__(self) -> int:
        return len(self.parsed())

    def __repr__(self) -> str:
        return f"StoredResource({self.resource_type!r}, {self.text[:60]!r})"


def resource_type_of(resource: dict[str, Any]) -> str | None:
    """The `resourceType` of a resource in a response, parsed (a dict) or stored."""
    if isinstance(resource, StoredResource):
        return resource.resource_type
    return resource.get("resourceType") if isinstance(resource, Mapping) else None
