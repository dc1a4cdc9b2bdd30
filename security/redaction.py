"""Removing API keys, bearer tokens and key query parameters from any text bound for a log.

`redact` is the single rule set; `RedactingFilter` applies it to log records so every handler
writes only redacted text, whichever logger the record came from.
"""

from __future__ import annotations

import logging
import os
import re
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MARKER = "[REDACTED]"

# Same shape as security.keys.KEY_PATTERN (fdk_<prefix>_<43 chars base64url>), which is used once
# importable; this copy covers records logged before the app registry is ready.
FALLBACK_KEY_PATTERN = re.compile(r"fdk_[A-Za-z0-9]+_[A-Za-z0-9_-]{43}")
# A mistyped or truncated key is still most of a secret, so anything key-like goes too; the
# public prefix is kept so an operator can still tell which key was used.
KEY_LIKE = re.compile(r"(?P<keep>fdk_[A-Za-z0-9]+_)[A-Za-z0-9_-]{8,}")
JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
# "Bearer" then the token, also URL-encoded ("Bearer%20...", "Bearer+..."); stops at quotes so
# the surrounding repr or JSON stays readable.
BEARER = re.compile(r"(?i)(?P<keep>\bbearer(?:\s+|%20|\+))[^\s'\",;]+")
# Error reports and request reprs show headers under their WSGI names as well.
ALWAYS_SECRET_HEADERS = ("authorization", "proxy-authorization")


def redact(text: str) -> str:
    """`text` with every key, token and key query parameter replaced by a marker."""
    if not text:
        return text
    text = _secret_header_pattern().sub(_keep_name, text)
    for pattern in _query_param_patterns():
        text = pattern.sub(_keep_name, text)
    text = BEARER.sub(_keep_name, text)
    text = JWT.sub(MARKER, text)
    text = KEY_LIKE.sub(_keep_name, text)
    return _key_pattern().sub(MARKER, text)


def _keep_name(match: re.Match) -> str:
    return match.group("keep") + MARKER


_imported_key_pattern: re.Pattern | None = None


def _key_pattern() -> re.Pattern:
    """security.keys.KEY_PATTERN once importable; until then (logging is configured before the
    app registry is ready, and keys.py needs it) the identical fallback."""
    global _imported_key_pattern
    if _imported_key_pattern is None:
        try:
            from .keys import KEY_PATTERN
        except Exception:
            return FALLBACK_KEY_PATTERN
        _imported_key_pattern = KEY_PATTERN
    return _imported_key_pattern


def _setting(name: str, default: str) -> str:
    """A security setting, also outside Django (the gunicorn master logs before settings load)."""
    try:
        return getattr(settings, name)
    except ImproperlyConfigured:
        return os.environ.get(name, default)


def secret_header_names() -> tuple[str, ...]:
    """Lower-case names of the request headers whose whole value is a credential."""
    key_header = _setting("SECURITY_API_KEY_HEADER", "X-API-Key").lower()
    return (*ALWAYS_SECRET_HEADERS, key_header)


def _secret_header_pattern() -> re.Pattern:
    return _compile_header_pattern(secret_header_names())


@lru_cache(maxsize=8)
def _compile_header_pattern(names: tuple[str, ...]) -> re.Pattern:
    # Each header as written on the wire (X-API-Key) and as a WSGI key (HTTP_X_API_KEY).
    spellings = set()
    for name in names:
        spellings.add(re.escape(name))
        spellings.add("HTTP_" + re.escape(name.upper().replace("-", "_")))
    alternatives = "|".join(sorted(spellings, key=len, reverse=True))
    # "Name: value" runs to the end of the line; in a repr ('Name': 'value') to the closing quote.
    return re.compile(
        rf"(?i)(?P<keep>(?<![\w-])(?P<q>['\"]?)(?:{alternatives})(?P=q)\s*:\s*(?P<vq>['\"]?))"
        r"(?:(?<=['\"])[^'\"\r\n]*|[^\r\n]*)"
    )


def _query_param_patterns() -> tuple[re.Pattern, ...]:
    return _compile_query_param_patterns(_setting("SECURITY_API_KEY_QUERY_PARAM", "apikey"))


@lru_cache(maxsize=8)
def _compile_query_param_patterns(name: str) -> tuple[re.Pattern, ...]:
    name = re.escape(name)
    return (
        # In a URL: the value ends at the next parameter (& or %26), whitespace, a quote or '#'.
        re.compile(rf"(?i)(?P<keep>{name}(?:=|%3D))(?:(?!%26)[^&\s'\"#])*"),
        # A parsed query in a repr: {'apikey': ['value']}
        re.compile(rf"(?i)(?P<keep>['\"]{name}['\"]\s*:\s*\[?\s*['\"])[^'\"]*"),
    )


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, traceback and stack so no credential reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(_message_of(record))
        record.args = None
        if record.exc_info and not record.exc_text:
            # Formatters reuse a cached exc_text, so formatting it here means only the redacted
            # traceback is ever written.
            record.exc_text = _TRACEBACK_FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_TRACEBACK_FORMATTER = logging.Formatter()


def _message_of(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:
        # A broken format string must not lose the record, nor leak the arguments unredacted.
        return f"{record.msg} {record.args!r}"
