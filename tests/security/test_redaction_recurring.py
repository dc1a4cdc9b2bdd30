"""The audit's redaction of recurring texts: the same answers as `redact`, no secret remembered."""

from __future__ import annotations

import pytest

from security import redaction
from security.redaction import MARKER, redact, redact_recurring

KEY = "fdk_abcdefghjk_" + "A" * 43
TEXTS = [
    "Benchmark client",
    "CN=bench-client.localhost,O=Benchmark",
    f"/fhir/Practitioner/{KEY}",
    "/fhir/Practitioner/x?apikey=secret-value",
    "read needs Practitioner.r: allow",
    "Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl",
]


@pytest.fixture(autouse=True)
def _forget():
    redaction._clean.clear()
    yield
    redaction._clean.clear()


def test_same_answers_as_redact_first_and_second_time():
    for _ in range(2):
        assert [redact_recurring(t) for t in TEXTS] == [redact(t) for t in TEXTS]
    assert MARKER in redact_recurring(f"/fhir/Practitioner/{KEY}")


def test_only_clean_texts_are_remembered():
    for text in TEXTS:
        redact_recurring(text)
    remembered = set().union(*redaction._clean.values())
    assert remembered == {t for t in TEXTS if redact(t) == t}
    assert not any(KEY in t or "secret-value" in t or "eyJ" in t for t in remembered)


def test_a_changed_key_parameter_is_applied_to_texts_found_clean_before(settings):
    text = "/fhir/Practitioner/x?token=secret-value"
    assert redact_recurring(text) == text
    settings.SECURITY_API_KEY_QUERY_PARAM = "token"
    assert redact_recurring(text) == f"/fhir/Practitioner/x?token={MARKER}"


def test_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(redaction, "_CLEAN_LIMIT", 10)
    for number in range(35):
        redact_recurring(f"client {number}")
    assert sum(len(texts) for texts in redaction._clean.values()) <= 10
