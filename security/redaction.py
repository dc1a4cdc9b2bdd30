"""Removing API keys, bearer tokens and key query parameters from any text bound for a log.

`redact` is the single rule set; `RedactingFilter` applies it to log records so every handler
writes only redacted text, whichever logger the record came from.
"""

from __future__ import annotations

import logging
import os
import re
from functools import lru_cache
from urllib.parse import quote, unquote_plus

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
# A query string's separators, `=` and also `%3D`, `%253D`, ... when the query sits inside another
# URL; and the chunks between them that may be parameter names, any character percent-encoded.
PARAM_TOKEN = re.compile(
    r"(?P<separator>=|%(?:25)*3[Dd])|(?P<name>(?:[\w.~+*!$()-]|%(?!(?:25)*3[Dd]))+)"
)
# What separates the last name in a decoded run from the path or pairs before it.
PARAM_NAME_END = re.compile(r"[?&;/#=]")
# A run of URL characters holding at least one escape: a key or token may hide in it encoded.
# Matched from a run's start only, so a long run costs one scan, not one per character.
ENCODED_RUN = re.compile(r"(?<![\w.~+*!$()%/-])[\w.~+*!$()%/-]*%[0-9A-Fa-f]{2}[\w.~+*!$()%/-]*")
MAX_DECODE_ROUNDS = 8
# Error reports and request reprs show headers under their WSGI names as well.
ALWAYS_SECRET_HEADERS = ("authorization", "proxy-authorization")


def redact(text: str) -> str:
    """`text` with every key, token and key query parameter replaced by a marker."""
    if not text:
        return text
    text = _secret_header_pattern().sub(_keep_name, text)
    text = _redact_query_params(text)
    text = _query_repr_pattern().sub(_keep_name, text)
    # Before the plain patterns, which would stop at the first escape and leave the rest.
    text = ENCODED_RUN.sub(_redact_encoded_run, text)
    return _redact_plain(text)


# Texts `redact_recurring` found clean, per rule set; bounded, and never holding a secret.
_CLEAN_LIMIT, _CLEAN_MAX_LENGTH = 4096, 512
_clean: dict[tuple, set[str]] = {}


def redact_recurring(text: str) -> str:
    """`redact` for texts that recur from request to request (the audit's client name,
    certificate subject, token issuer, decisions): one found to hold nothing to redact is
    remembered, under the rules it was checked with, and not scanned again. Only such clean
    texts are kept, so the memory never holds a secret."""
    if not text:
        return text
    rules = (secret_header_names(), _setting("SECURITY_API_KEY_QUERY_PARAM", "apikey"))
    clean = _clean.get(rules)
    if clean is not None and text in clean:
        return text
    redacted = redact(text)
    if redacted == text and len(text) <= _CLEAN_MAX_LENGTH:
        if clean is None or len(clean) >= _CLEAN_LIMIT:
            _clean.clear()  # a new rule set, or full: start over
            clean = _clean.setdefault(rules, set())
        clean.add(text)
    return redacted


def _redact_plain(text: str) -> str:
    """Keys and tokens written out in clear."""
    text = BEARER.sub(_keep_name, text)
    text = JWT.sub(MARKER, text)
    text = KEY_LIKE.sub(_keep_name, text)
    return _key_pattern().sub(MARKER, text)


def canonical(text: str) -> str:
    """`text` URL-decoded as the app decodes a query (`%XX` in any case, `+` as space), then
    again while that changes anything.

    The app decodes once; decoding further is deliberate. A logged URL can carry another URL
    (a Referer, a `next=` parameter), each nesting adds a layer of escapes, and anyone reading
    the log can peel them off. Over-redacting a parameter that only looks like the key after
    several rounds is the safe error. Each round that changes the text shortens it or removes
    every `+`, so the loop ends; the cap only bounds the work. Overlong UTF-8 decodes to U+FFFD,
    as it does in the app, never to ASCII.
    """
    for _ in range(MAX_DECODE_ROUNDS):
        decoded = unquote_plus(text)
        if decoded == text:
            break
        text = decoded
    return text


def is_secret_param(name: str) -> bool:
    """Whether a query parameter name, in any encoding, names the API key parameter.

    The app matches the decoded name exactly; any case and surrounding space also count here,
    so redaction covers at least every spelling the app accepts. In a nested URL the run before
    the separator may include the outer path (`%2Ffhir%3Fapikey`): the last segment decides.
    """
    last = PARAM_NAME_END.split(canonical(name))[-1]
    return last.strip().lower() in _secret_param_names()


def _redact_query_params(text: str) -> str:
    """Every value of a parameter whose decoded name is the key parameter's, at any depth."""
    out, position, name = [], 0, None
    # One pass over name chunks and separators: linear in the text whatever it holds.
    for token in PARAM_TOKEN.finditer(text):
        if token.start() < position:
            continue  # inside a value already redacted
        if token.lastgroup == "name":
            name = token
            continue
        if name is not None and name.end() == token.start() and is_secret_param(name.group()):
            end = _value_end(text, token.end(), _depth(token.group()))
            # An empty value hides nothing (and a marker already written there stays single).
            if end > token.end():
                out.append(text[position : token.end()] + MARKER)
                position = end
        name = None
    out.append(text[position:])
    return "".join(out)


def _depth(separator: str) -> int:
    """How many times a pair's `=` was encoded: `=` 0, `%3D` 1, `%253D` 2, ..."""
    return 0 if separator == "=" else 1 + separator.count("25")


def _value_end(text: str, start: int, depth: int) -> int:
    """Where the value starting at `start` ends: a pair separator of its query or of an outer
    one (`&`, `%26`, `%2526`, ... down to its own depth), whitespace, a quote or a fragment."""
    found = _value_terminator(depth).search(text, start)
    return found.start() if found else len(text)


@lru_cache(maxsize=16)
def _value_terminator(depth: int) -> re.Pattern:
    encoded_ampersand = rf"|%(?:25){{0,{depth - 1}}}26" if depth else ""
    return re.compile(r"[\s'\"<>#&]" + encoded_ampersand)


def _redact_encoded_run(match: re.Match) -> str:
    """A run of URL characters with escapes, decoded, if a key or token hides in it.

    The redacted text is re-encoded, so a decoded control character (a `%0A`) never reaches a
    log line as a raw line break.
    """
    run = match.group(0)
    decoded = canonical(run)
    # Also the key parameter: its `=` or `&` may be escaped in ways the raw pass cannot see.
    redacted = _redact_plain(_redact_query_params(decoded))
    if redacted == decoded:
        return run
    return quote(redacted, safe="[]_.~-/:?=&")


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


def _secret_param_names() -> frozenset[str]:
    return frozenset({_setting("SECURITY_API_KEY_QUERY_PARAM", "apikey").lower()})


def _query_repr_pattern() -> re.Pattern:
    return _compile_query_repr_pattern(_setting("SECURITY_API_KEY_QUERY_PARAM", "apikey"))


@lru_cache(maxsize=8)
def _compile_query_repr_pattern(name: str) -> re.Pattern:
    # A parsed query in a repr: {'apikey': ['value']}
    return re.compile(rf"(?i)(?P<keep>['\"]{re.escape(name)}['\"]\s*:\s*\[?\s*['\"])[^'\"]*")


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
