"""Parsing of the Prefer request header (RFC 7240) for `return`, `handling` and `respond-async`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.http import HttpRequest

# Preference values are matched case-insensitively but reported in their FHIR spelling.
RETURN_VALUES = {v.lower(): v for v in ("minimal", "representation", "OperationOutcome")}
HANDLING_VALUES = {"strict": "strict", "lenient": "lenient"}


@dataclass(frozen=True)
class Preferences:
    return_: str = "representation"
    # Strict unless the client asks otherwise: an unknown parameter or modifier is a 400, because
    # ignoring it would silently widen the answer.
    handling: str = "strict"
    respond_async: bool = False  # `respond-async`, which Bulk Data's kick-off requires

    @property
    def strict(self) -> bool:
        return self.handling == "strict"


def _pairs(header: str) -> Iterator[tuple[str, str]]:
    for item in header.split(","):
        for token in item.split(";"):
            name, _, value = token.partition("=")
            yield name.strip().lower(), value.strip().strip('"')


def parse_prefer(header: str | None) -> Preferences:
    """Known preferences from the header; unknown ones are ignored, as RFC 7240 asks."""
    return_: str | None = None  # the first one given wins
    handling: str | None = None
    respond_async = False
    for name, value in _pairs(header or ""):
        if name == "return" and value.lower() in RETURN_VALUES:
            return_ = return_ or RETURN_VALUES[value.lower()]
        elif name == "handling" and value.lower() in HANDLING_VALUES:
            handling = handling or HANDLING_VALUES[value.lower()]
        elif name == "respond-async" and not value:
            respond_async = True
    default = Preferences()
    return Preferences(
        return_=return_ or default.return_,
        handling=handling or default.handling,
        respond_async=respond_async,
    )


def preferences(request: HttpRequest) -> Preferences:
    return parse_prefer(request.META.get("HTTP_PREFER"))
