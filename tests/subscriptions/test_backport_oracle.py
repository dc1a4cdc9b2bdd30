"""The FSH-derived oracle itself: it reads the IG's rules and fails Bundles that break them."""

from __future__ import annotations

import copy

import pytest

from .backport_oracle import STATUS_PROFILE, problems, profiles

STATUS = {
    "resourceType": "Parameters",
    "meta": {"profile": [f"http://example.org/{STATUS_PROFILE}"]},
    "parameter": [
        {"name": "subscription", "valueReference": {"reference": "Subscription/1"}},
        {"name": "topic", "valueCanonical": "http://example.org/topic"},
        {"name": "status", "valueCode": "active"},
        {"name": "type", "valueCode": "event-notification"},
        {"name": "events-since-subscription-start", "valueString": "1"},
        {
            "name": "notification-event",
            "part": [
                {"name": "event-number", "valueString": "1"},
                {"name": "timestamp", "valueInstant": "2026-01-01T00:00:00Z"},
                {"name": "focus", "valueReference": {"reference": "Practitioner/1"}},
            ],
        },
    ],
}
GOOD = {"resourceType": "Bundle", "type": "history", "entry": [{"resource": STATUS}]}


def test_the_rules_come_from_the_fsh():
    rules = profiles()
    assert rules.bundle_type == "history"
    assert (rules.status_entry.minimum, rules.status_entry.maximum) == (1, 1)
    required = {s.name for s in rules.parameters.values() if s.minimum == 1}
    assert required == {"subscription", "status", "type"}
    event = next(s for s in rules.parameters.values() if s.name == "notification-event")
    assert {s.name for s in event.parts.values() if s.minimum == 1} == {"event-number"}
    assert problems(GOOD, ("topic",), ("timestamp", "focus")) == []


def parameter(bundle: dict, name: str) -> dict:
    return next(p for p in bundle["entry"][0]["resource"]["parameter"] if p["name"] == name)


def drop(name):
    def change(bundle):
        parameters = bundle["entry"][0]["resource"]["parameter"]
        parameters[:] = [p for p in parameters if p["name"] != name]

    return change


def retype(name, key, value):
    def change(bundle):
        found = parameter(bundle, name)
        for old in [k for k in found if k.startswith("value")]:
            del found[old]
        found[key] = value

    return change


def no_event_number(bundle):
    parts = parameter(bundle, "notification-event")["part"]
    parts[:] = [p for p in parts if p["name"] != "event-number"]


def two_statuses(bundle):
    bundle["entry"][0]["resource"]["parameter"].append({"name": "status", "valueCode": "off"})


def resource_first(bundle):
    bundle["entry"].insert(0, {"resource": {"resourceType": "Practitioner"}})


@pytest.mark.parametrize(
    "change",
    [
        drop("subscription"),
        drop("status"),
        drop("type"),
        retype("status", "valueString", "active"),
        retype("status", "valueCode", "paused"),
        retype("type", "valueCode", "notification"),
        retype("subscription", "valueString", "Subscription/1"),
        retype("events-since-subscription-start", "valueInteger", 1),
        no_event_number,
        two_statuses,
        resource_first,
        lambda bundle: bundle.update(type="searchset"),
        lambda bundle: bundle.update(entry=[]),
    ],
)
def test_a_broken_bundle_fails(change):
    bundle = copy.deepcopy(GOOD)
    change(bundle)
    assert problems(bundle) != []
