"""No API key, bearer token or key query parameter reaches a log line or an error report."""

from __future__ import annotations

import io
import logging
import random
import sys

import pytest
from django.core import mail
from django.test import Client, RequestFactory
from django.urls import include, path
from django.views.debug import ExceptionReporter

from security.keys import KEY_PATTERN, issue_key
from security.models import ApiClient
from security.redaction import MARKER, RedactingFilter, canonical, is_secret_param, redact
from security.reporting import RedactingExceptionReporter, RedactingExceptionReporterFilter

JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImEifQ.eyJzdWIiOiJjbGllbnQtMSJ9.c2lnbmF0dXJlLWJ5dGVz"
OPAQUE_TOKEN = "opaque-token-9f8e7d6c5b4a"
SHORT_BAD_KEY = "not-a-key-but-secret-123"
logger = logging.getLogger("tests.security.redaction")


@pytest.fixture
def key(db) -> str:
    client = ApiClient.objects.create(name="Redaction Clinic")
    return issue_key(client, "test")[1]


def secrets_of(key: str) -> list[str]:
    """The key, its secret part alone, and the tokens: none may appear anywhere."""
    return [key, secret_part(key), JWT, OPAQUE_TOKEN, SHORT_BAD_KEY]


def secret_part(key: str) -> str:
    return key.split("_", 2)[2]


def assert_clean(text: str, key: str) -> None:
    for secret in secrets_of(key):
        assert secret not in text


# ---------------------------------------------------------------------------- redact()


def test_real_keys_match_the_shared_key_pattern(key):
    assert KEY_PATTERN.fullmatch(key)
    assert redact(f"using {key} now") == f"using fdk_{key.split('_')[1]}_{MARKER} now"


@pytest.mark.parametrize(
    "text",
    [
        "GET /fhir/Practitioner?name=x&apikey={key}&_count=1 HTTP/1.1",
        "GET /fhir/Practitioner?APIKEY={key}",
        "next=%2Ffhir%2FPractitioner%3Fapikey%3D{key}%26x%3D1",
        "X-API-Key: {key}",
        "x-api-key:{key}",
        "{{'HTTP_X_API_KEY': '{key}', 'PATH_INFO': '/fhir'}}",
        "<QueryDict: {{'apikey': ['{key}']}}>",
        "a truncated {key_start}",
    ],
)
def test_keys_are_redacted_wherever_they_appear(key, text):
    rendered = text.format(key=key, key_start=key[:-20])
    redacted = redact(rendered)
    assert secret_part(key)[:12] not in redacted
    assert MARKER in redacted


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {JWT}",
        f"authorization: bearer {OPAQUE_TOKEN}",
        f"token={JWT}",
        f"{{'HTTP_AUTHORIZATION': 'Bearer {OPAQUE_TOKEN}'}}",
        f"header was 'Bearer {OPAQUE_TOKEN}', refused",
        f"Bearer%20{OPAQUE_TOKEN}",
        f"Proxy-Authorization: Basic {OPAQUE_TOKEN}",
    ],
)
def test_tokens_are_redacted(text):
    redacted = redact(text)
    assert JWT not in redacted and OPAQUE_TOKEN not in redacted
    assert MARKER in redacted


def test_any_value_of_the_key_parameter_or_header_is_redacted():
    assert SHORT_BAD_KEY not in redact(f"/fhir/Organization?apikey={SHORT_BAD_KEY}")
    assert SHORT_BAD_KEY not in redact(f"X-API-Key: {SHORT_BAD_KEY}")


def test_configured_names_are_used(settings):
    settings.SECURITY_API_KEY_QUERY_PARAM = "access_key"
    settings.SECURITY_API_KEY_HEADER = "X-Directory-Key"
    assert redact(f"?access_key={SHORT_BAD_KEY}&a=1") == f"?access_key={MARKER}&a=1"
    assert redact(f"X-Directory-Key: {SHORT_BAD_KEY}") == f"X-Directory-Key: {MARKER}"


def test_other_text_is_left_alone():
    text = "GET /fhir/Practitioner?name=Okafor&_count=10 200 (apikey param absent) Accept: json"
    assert redact(text) == text


# ---------------------------------------------------------------------------- RedactingFilter


def _record(msg, *args, exc_info=None, sinfo=None) -> logging.LogRecord:
    return logging.LogRecord("t", logging.ERROR, __file__, 1, msg, args, exc_info, sinfo=sinfo)


def test_filter_formats_arguments_then_redacts(key):
    record = _record("request %s with %r", f"/fhir?apikey={key}", {"Authorization": JWT})
    assert RedactingFilter().filter(record)
    assert record.args is None
    assert key not in record.msg and JWT not in record.msg
    assert record.getMessage() == record.msg


def test_filter_redacts_traceback_and_stack(key):
    try:
        raise ValueError(f"bad key {key}")
    except ValueError:
        record = _record("failed", exc_info=sys.exc_info(), sinfo=f"Stack: presented={key}")
    RedactingFilter().filter(record)
    written = logging.Formatter().format(record)
    assert "ValueError: bad key fdk_" in written
    assert_clean(written, key)


def test_every_configured_handler_redacts(settings):
    for name, handler in settings.LOGGING["handlers"].items():
        assert "redact" in handler.get("filters", []), name
    assert settings.LOGGING["filters"]["redact"]["()"] == "security.redaction.RedactingFilter"
    # Django's default handlers for these loggers would bypass the filter.
    for name in ("django", "django.server", "django.request"):
        for handler in logging.getLogger(name).handlers:
            assert any(isinstance(f, RedactingFilter) for f in handler.filters), (name, handler)


# ---------------------------------------------------------------------------- through Django


def leaky_view(request):
    """Test only: logs and raises with the request's credentials, as careless code would."""
    logger.info("headers %s query %s", dict(request.headers), request.GET)
    logger.debug("meta %r", request.META, stack_info=True)
    presented = request.headers.get("X-API-Key", "")
    raise RuntimeError(f"could not use {presented} from {request.get_full_path()}")


urlpatterns = [
    path("leaky", leaky_view),
    path("", include("config.urls")),
]
handler500 = "fhirapi.errors.server_error"


@pytest.fixture
def captured_console():
    """What the configured root handlers write, as an operator would read it."""
    stream = io.StringIO()
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    previous = [h.setStream(stream) for h in handlers]
    yield stream
    for handler, old in zip(handlers, previous, strict=True):
        handler.setStream(old)


def _requests_with_secrets(key: str) -> None:
    client = Client(raise_request_exception=False)
    headers = {"X-API-Key": key, "Authorization": f"Bearer {JWT}"}
    client.get(f"/fhir/Practitioner?apikey={key}", headers=headers)
    client.get(f"/fhir/Practitioner/{key}", headers={"Authorization": f"Bearer {OPAQUE_TOKEN}"})
    client.get(f"/fhir/Nope?apikey={SHORT_BAD_KEY}", headers={"X-API-Key": SHORT_BAD_KEY})
    client.get(f"/leaky?apikey={key}", headers=headers)


@pytest.fixture
def leaky_urls(settings):
    settings.ROOT_URLCONF = __name__
    settings.ADMINS = [("Ops", "ops@example.org")]


def test_no_secret_in_django_logs(key, leaky_urls, caplog, captured_console):
    caplog.set_level(logging.DEBUG)
    for name in ("django", "fhirapi", "security", "tests"):
        caplog.set_level(logging.DEBUG, logger=name)
    _requests_with_secrets(key)

    assert "Internal Server Error: /leaky" in caplog.text
    assert any(r.exc_info for r in caplog.records), "the 500 was logged with its traceback"
    logged = caplog.text + "\n".join(r.exc_text or "" for r in caplog.records)
    written = captured_console.getvalue()
    for text in (logged, written):
        assert_clean(text, key)
        assert MARKER in text
    assert "RuntimeError: could not use" in written


def test_no_secret_in_the_error_report_mailed_to_admins(key, leaky_urls):
    _requests_with_secrets(key)
    assert len(mail.outbox) == 1, "one 500, one report"
    report = mail.outbox[0]
    assert "RuntimeError" in report.body and "leaky_view" in report.body
    assert_clean(report.subject + report.body, key)


# ---------------------------------------------------------------------------- exception reports


def _failing_request_report(key, reporter_class):
    request = RequestFactory().get(
        "/fhir/Practitioner",
        {"apikey": key, "name": "Okafor"},
        headers={"X-API-Key": key, "Authorization": f"Bearer {JWT}"},
    )
    presented = key  # a local variable holding the key, as a check would have
    token = f"Bearer {OPAQUE_TOKEN}"
    try:
        raise ValueError(f"refused {presented} {token}")
    except ValueError:
        return reporter_class(request, *sys.exc_info())


def test_filter_cleanses_meta_and_frame_variables(key, settings):
    assert settings.DEFAULT_EXCEPTION_REPORTER_FILTER == (
        "security.reporting.RedactingExceptionReporterFilter"
    )
    reporter = _failing_request_report(key, ExceptionReporter)
    assert isinstance(reporter.filter, RedactingExceptionReporterFilter)
    data = reporter.get_traceback_data()
    meta = data["request_meta"]
    assert meta["QUERY_STRING"] == f"apikey={MARKER}&name=Okafor"
    assert meta["HTTP_X_API_KEY"] == reporter.filter.cleansed_substitute
    assert meta["HTTP_AUTHORIZATION"] == reporter.filter.cleansed_substitute
    frame_text = repr([frame["vars"] for frame in data["frames"]])
    assert_clean(frame_text + repr(meta), key)
    query = reporter.filter.get_safe_query(reporter.request)
    assert query["name"] == "Okafor"
    assert query["apikey"] == reporter.filter.cleansed_substitute


@pytest.mark.parametrize("render", ["get_traceback_html", "get_traceback_text"])
def test_whole_report_has_no_secret(key, render):
    reporter = _failing_request_report(key, RedactingExceptionReporter)
    report = getattr(reporter, render)()
    assert "ValueError" in report and "Okafor" in report
    assert_clean(report, key)


# ---------------------------------------------------------------------------- any encoding


def _encoded(text: str, rng: random.Random) -> str:
    """`text` with a random choice of characters percent-encoded in random hex case."""
    return "".join(_maybe_escaped(char, rng) for char in text)


def _nested(url: str, rng: random.Random, depth: int) -> str:
    """`url` as a parameter value of another URL, `depth` times: its delimiters and escapes are
    escaped each time, other characters at random."""
    for _ in range(depth):
        url = "".join(_maybe_escaped(char, rng, must="&=?#%+ ") for char in url)
    return url


def _maybe_escaped(char: str, rng: random.Random, must: str = "") -> str:
    if char not in must and rng.random() < 0.5:
        return char
    escape = f"%{ord(char):02X}"
    return "".join(c.lower() if rng.random() < 0.5 else c for c in escape)


def _random_case(text: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c for c in text)


@pytest.mark.parametrize("seed", range(200))
def test_key_parameter_is_redacted_in_any_encoding_of_name_and_value(key, seed):
    rng = random.Random(seed)
    name = _encoded(_random_case("apikey", rng), rng)
    value = _encoded(key, rng)
    inner = f"/fhir/Organization?_count=1&{name}={value}&name=Okafor"
    depth = rng.choice([0, 1, 2])
    # Depth 0: the request line itself; deeper: that URL as a parameter of another (a Referer
    # or `next=`), encoded once per level, mixed-case escapes included.
    text = inner if depth == 0 else "/login?next=" + _nested(inner, rng, depth)
    redacted = redact(f'"GET {text} HTTP/1.1" 200')
    readable = canonical(redacted)
    assert secret_part(key)[:12] not in readable, (text, redacted)
    assert MARKER in redacted
    assert "_count=1" in readable
    if depth == 0:
        assert "name=Okafor" in readable, "only the key's value goes"


@pytest.mark.parametrize(
    "query",
    [
        "%61pikey={key}",
        "%41%50%49%4b%45%59={key}",
        "apikey=fdk%5F{prefix}%5F{secret}",
        "api%6Bey=%66%64%6B_{prefix}_{secret}",
        "apikey+={key}",
        "apikey={secret_head}%26{secret_tail}",
        "x=1&apikey={key_plus_spaces}",
    ],
)
def test_spellings_the_app_decodes_are_redacted(key, query):
    _, prefix, secret = key.split("_", 2)
    rendered = query.format(
        key=key,
        prefix=prefix,
        secret=secret,
        secret_head=secret[:20],
        secret_tail=secret[20:],
        key_plus_spaces=f"+{key}+",
    )
    redacted = canonical(redact(f"GET /fhir/Organization?{rendered} HTTP/1.1"))
    assert secret[:12] not in redacted and secret[20:] not in redacted


@pytest.mark.parametrize(
    "text",
    [
        "GET /fhir/Organization/fdk%5F{prefix}%5F{secret} HTTP/1.1",
        "Referer: https://x.example/fhir/Organization/%66dk_{prefix}_{secret}",
        "Bearer%20{jwt}",
        "GET /fhir/x?next=%252Ffhir%252FOrganization%252Ffdk%255F{prefix}%255F{secret}",
    ],
)
def test_keys_and_tokens_encoded_outside_a_key_parameter_are_redacted(key, text):
    _, prefix, secret = key.split("_", 2)
    redacted = redact(text.format(prefix=prefix, secret=secret, jwt=JWT))
    readable = canonical(redacted)
    assert secret[:12] not in readable and JWT not in readable
    assert MARKER in redacted


def test_decoded_control_characters_stay_encoded(key):
    redacted = redact(f"GET /fhir/Organization/%0A{key.replace('_', '%5F')}%0D%0Aforged: line")
    assert "\n" not in redacted and "\r" not in redacted
    assert MARKER in redacted


def test_overlong_utf8_is_not_the_key_name():
    # The app decodes %C1%A1 to U+FFFD, not "a", so this is not the key parameter.
    assert not is_secret_param("%C1%A1pikey")
    assert is_secret_param("%61pikey") and is_secret_param("%2561PIKEY")


def test_other_encoded_text_is_left_alone():
    text = "GET /fhir/Practitioner?name=O%27Brien&address-city=St%20Ives&_count=10 HTTP/1.1"
    assert redact(text) == text
