"""Content negotiation: JSON for any JSON-compatible Accept or `_format`, 406 for the rest."""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

from .exceptions import NotAcceptable
from .parsers import base_media_type

# Media ranges under which FHIR JSON is an acceptable answer.
JSON_ACCEPTS = {
    "application/fhir+json",
    "application/json",
    "application/json+fhir",
    "application/*",
    "*/*",
}
JSON_FORMATS = {"json", "application/json", "application/fhir+json", "application/json+fhir"}


def _accept_ranges(header: str) -> list[tuple[str, float]]:
    ranges = []
    for part in header.split(","):
        media, *params = [p.strip() for p in part.split(";")]
        if not media:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append((media.lower(), quality))
    return ranges


def accepts_json(header: str | None) -> bool:
    """True when the Accept header is missing or admits a JSON type with q > 0."""
    if not header or not header.strip():
        return True
    return any(media in JSON_ACCEPTS and q > 0 for media, q in _accept_ranges(header))


def format_is_json(value: str) -> bool:
    # A '+' in `_format=application/fhir+json` arrives as a space when the client did not escape it.
    return base_media_type(value.replace(" ", "+")) in JSON_FORMATS


class FHIRContentNegotiation(BaseContentNegotiation):
    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        media_type = base_media_type(request.content_type)
        for parser in parsers:
            if media_type in getattr(parser, "media_types", (parser.media_type,)):
                return parser
        return None

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        requested_format = request.query_params.get("_format")
        if requested_format is not None:
            if not format_is_json(requested_format):
                raise NotAcceptable(
                    f"_format '{requested_format}' is not supported; this server speaks JSON only"
                )
        elif not accepts_json(request.META.get("HTTP_ACCEPT")):
            raise NotAcceptable(
                "None of the Accept media types is supported; use application/fhir+json"
            )
        return renderer, renderer.media_type
