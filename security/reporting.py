"""Error reports (admin e-mails, the debug page) without API keys, tokens or key parameters.

Django's filter hides settings and META entries by name; requests to this service carry their
credentials in headers, the query string and local variables, so those are cleansed here too.
"""

from __future__ import annotations

from types import FrameType
from typing import Any

from django.http import HttpRequest, QueryDict
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from .redaction import is_secret_param, redact, secret_header_names

# META entries that hold the raw query string, the one place a key parameter survives parsing.
QUERY_META_KEYS = ("QUERY_STRING", "RAW_URI", "REQUEST_URI")


class _Shown:
    """A stand-in whose repr is already-redacted text, for report sections that pprint values."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class RedactingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Also cleanses credential headers, query-string secrets and secret-bearing local values."""

    def get_safe_request_meta(self, request: HttpRequest) -> dict[str, Any]:
        meta = super().get_safe_request_meta(request)
        for name in _credential_meta_keys():
            if name in meta:
                meta[name] = self.cleansed_substitute
        return {name: _redact_value(value) for name, value in meta.items()}

    def get_safe_query(self, request: HttpRequest) -> QueryDict:
        """request.GET with the key parameter starred and any other secret-shaped value redacted."""
        query = request.GET.copy()
        for name in list(query):
            values = query.getlist(name)
            # The same test as every log line, so a name the app decodes to the key's counts.
            if is_secret_param(name):
                query.setlist(name, [self.cleansed_substitute] * len(values))
            else:
                query.setlist(name, [redact(value) for value in values])
        return query

    # Django only iterates the pairs; its stubs say ItemsView.
    def get_traceback_frame_variables(  # type: ignore[override]
        self, request: HttpRequest | None, tb_frame: FrameType
    ) -> list[tuple[str, Any]]:
        # Local variables (the raw header, a parsed token) are where a view's secrets live.
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [(name, _redacted_if_secret(value)) for name, value in variables]


def _credential_meta_keys() -> list[str]:
    return ["HTTP_" + name.upper().replace("-", "_") for name in secret_header_names()]


def _redact_value(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


def _redacted_if_secret(value: object) -> object:
    try:
        shown = repr(value)
    except Exception:
        return value
    cleaned = redact(shown)
    return value if cleaned == shown else _Shown(cleaned)


class RedactingExceptionReporter(ExceptionReporter):
    """Reports whose query, URI and exception text are cleansed, and redacted once more whole."""

    def get_traceback_data(self) -> dict[str, Any]:
        data = super().get_traceback_data()
        if self.request is not None and hasattr(self.filter, "get_safe_query"):
            data["request_GET_items"] = self.filter.get_safe_query(self.request).items()
        for field in ("request_insecure_uri", "exception_value", "exception_notes"):
            if isinstance(data.get(field), str):
                data[field] = redact(data[field])
        return data

    # The last pass catches secrets in places no filter hook reaches (e.g. a template context).
    def get_traceback_html(self) -> str:  # type: ignore[override]  # plain text, sent as is
        return redact(str(super().get_traceback_html()))

    def get_traceback_text(self) -> str:  # type: ignore[override]  # plain text, sent as is
        return redact(str(super().get_traceback_text()))
