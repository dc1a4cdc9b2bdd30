"""Request body parsing: FHIR JSON only, read with a hard size limit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.parsers import BaseParser

from directory.validation import parse_json

from .exceptions import PayloadTooLarge

# FHIR R4 names application/fhir+json; the other two are common in older clients.
JSON_MEDIA_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


def base_media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` -> `application/json`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def max_body_bytes() -> int:
    return settings.FHIR_MAX_BODY_BYTES


def too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than {max_body_bytes()} bytes")


def read_limited(stream: IO[bytes] | None) -> bytes:
    """Read a body, refusing more than FHIR_MAX_BODY_BYTES even when Content-Length lied."""
    if stream is None:
        return b""
    limit = max_body_bytes()
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise too_large()
    return body


class FHIRJSONParser(BaseParser):
    media_type = "application/fhir+json"
    media_types = JSON_MEDIA_TYPES

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> dict:
        return parse_json(read_limited(stream))
