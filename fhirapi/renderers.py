"""The only renderer: FHIR JSON. There is deliberately no browsable API or XML."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework.renderers import BaseRenderer

from directory.stored import StoredResource

FHIR_JSON = "application/fhir+json"


class RawJSON(str):
    """JSON text that is already serialized (stored resources), sent without re-encoding."""


def _spliced(value: object) -> orjson.Fragment:
    """orjson's hook for what it does not know: stored resources go in as their text."""
    if isinstance(value, StoredResource):
        return orjson.Fragment(value.text)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _parsed(value: object) -> dict:
    """The standard library's hook, for what orjson refuses (integers beyond 64 bits)."""
    if isinstance(value, StoredResource):
        return value.parsed()
    raise TypeError(f"{type(value).__name__} is not JSON")


def dumps(data: Any) -> bytes:
    """Compact UTF-8 JSON. orjson builds a Bundle several times faster than `json` and splices
    stored resources' text without parsing it (issue 10); `json` is the fallback for the values
    orjson refuses, so no resource is ever refused for its numbers."""
    try:
        return orjson.dumps(data, default=_spliced)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=_parsed)
        return text.encode("utf-8")


class FHIRJSONRenderer(BaseRenderer):
    media_type = FHIR_JSON
    format = "json"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        if isinstance(data, RawJSON):
            return data.encode("utf-8")
        return dumps(data)
