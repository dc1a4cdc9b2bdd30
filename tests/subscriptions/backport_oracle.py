"""A checker of notification Bundles built from the Backport IG's own FSH, not from our code.

tests/data/subscriptions-backport/BackportNotificationR4.fsh (README there) declares the R4
notification Bundle (`type = #history`, a `subscriptionStatus` entry 1..1 whose resource is a
`backport-subscription-status-r4` Parameters, invariant `backport-notification-bundle-r4-1`)
and that Parameters profile: parameter slices by name with their cardinality, each value's
cardinality and type, and the `notification-event` parts likewise. This module reads those rules
from the FSH and checks a Bundle against them; the invariant's FHIRPath is run by fhirpathpy.

Not read from the FSH: the value sets the status and type codes are bound to are FHIR core's
(R4 `subscription-status`, R5 `subscription-notification-type`), listed here from the spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from fhirpathpy import evaluate

FSH = Path(__file__).parents[1] / "data" / "subscriptions-backport" / "BackportNotificationR4.fsh"
BUNDLE_PROFILE = "backport-subscription-notification-r4"
STATUS_PROFILE = "backport-subscription-status-r4"
# FHIR R4 ValueSet subscription-status; FHIR R5 ValueSet subscription-notification-type.
BINDINGS = {
    "status": {"requested", "active", "error", "off"},
    "type": {"handshake", "heartbeat", "event-notification", "query-status", "query-event"},
}
# FSH type names -> the choice element's suffix (value[x] only Reference(Subscription) -> Reference)
TYPE_SUFFIX = {
    "canonical": "Canonical",
    "code": "Code",
    "string": "String",
    "instant": "Instant",
    "Coding": "Coding",
    "CodeableConcept": "CodeableConcept",
}
ENTITY = re.compile(r"^(Profile|Invariant|Instance|RuleSet|Extension|ValueSet|CodeSystem):")


@dataclass
class Slice:
    minimum: int
    maximum: int | None  # None: *
    name: str = ""
    value_minimum: int = 0
    value_types: tuple[str, ...] = ()
    parts: dict[str, Slice] = field(default_factory=dict)


@dataclass
class Profiles:
    bundle_type: str
    status_entry: Slice
    invariants: list[str]
    parameters: dict[str, Slice]


def _blocks(text: str) -> dict[str, list[str]]:
    """Each entity's rule lines by its Id (Invariants by name), continuation lines joined."""
    blocks: dict[str, list[str]] = {}
    header, rules, name = "", [], ""
    for raw in [*text.splitlines(), "Profile: end"]:
        line = raw.split("//")[0].rstrip() if not raw.lstrip().startswith("Expression") else raw
        if ENTITY.match(line):
            if header:
                blocks[name] = rules
            header, rules, name = line, [], line.split(":", 1)[1].strip()
        elif line.startswith("Id:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("* "):
            rules.append(line[2:].strip())
        elif line.startswith("    ") and rules and line.strip():
            rules[-1] += " " + line.strip()
        elif line.startswith("Expression:"):
            rules.append(line)
    return blocks


def _cardinality(text: str) -> tuple[int, int | None]:
    low, high = text.split("..")
    return int(low), None if high == "*" else int(high)


def _slices(rules: list[str], path: str) -> dict[str, Slice]:
    """The slices `contains`ed at `path`, filled in by the rules on `path[slice]...`."""
    found: dict[str, Slice] = {}
    for rule in rules:
        if rule.startswith(f"{path} contains ") or (rule.startswith(path) and " contains " in rule):
            head, _, listed = rule.partition(" contains ")
            if head.strip() != path:
                continue
            for item in listed.split(" and "):
                slice_name, card = item.split()[:2]
                found[slice_name] = Slice(*_cardinality(card))
    for slice_name, described in found.items():
        prefix = f"{path}[{slice_name}]"
        for rule in rules:
            if rule.startswith(f'{prefix}.name = "'):
                described.name = rule.split('"')[1]
            elif rule.startswith(f"{prefix}.value[x] only "):
                only = rule.removeprefix(f"{prefix}.value[x] only ").split(" or ")
                described.value_types = tuple(t.split("(")[0].strip() for t in only)
            elif re.fullmatch(rf"{re.escape(prefix)}\.value\[x\] \d\.\.[\d*].*", rule):
                described.value_minimum = _cardinality(rule.split()[1])[0]
        described.parts = _slices(rules, f"{prefix}.part")
    return found


@cache
def profiles() -> Profiles:
    blocks = _blocks(FSH.read_text())
    bundle, status = blocks[BUNDLE_PROFILE], blocks[STATUS_PROFILE]
    [bundle_type] = [r.split("#")[1] for r in bundle if r.startswith("type = #")]
    entries = _slices(bundle, "entry")
    invariant_names = [r.split()[1] for r in bundle if r.startswith("obeys ")]
    invariants = [
        line.split('"')[1]
        for name in invariant_names
        for line in blocks[name]
        if line.startswith("Expression:")
    ]
    return Profiles(
        bundle_type, entries["subscriptionStatus"], invariants, _slices(status, "parameter")
    )


def problems(bundle: dict, present: tuple[str, ...] = (), parts: tuple[str, ...] = ()) -> list[str]:
    """What keeps `bundle` from the IG's R4 notification Bundle profile; [] when nothing.

    `present` and `parts` name optional (must-support) parameters and notification-event parts
    this server always sends: they must be declared by the profile and present in the Bundle.
    """
    rules = profiles()
    found = []
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != rules.bundle_type:
        found.append(f"Bundle.type must be {rules.bundle_type}")
    for expression in rules.invariants:
        if evaluate(bundle, expression) != [True]:
            found.append(f"invariant fails: {expression}")
    statuses = [
        e["resource"]
        for e in bundle.get("entry") or []
        if (e.get("resource") or {}).get("resourceType") == "Parameters"
    ]
    entry = rules.status_entry
    if not entry.minimum <= len(statuses) <= (entry.maximum or len(statuses)):
        found.append(f"{len(statuses)} SubscriptionStatus entries")
    for parameters in statuses[:1]:
        if not any(
            p.endswith(STATUS_PROFILE) for p in parameters.get("meta", {}).get("profile", [])
        ):
            found.append(f"the status does not claim {STATUS_PROFILE}")
        found += _check(parameters.get("parameter") or [], rules.parameters, "parameter")
        found += _present(parameters.get("parameter") or [], rules.parameters, present, parts)
    return found


def _present(
    items: list[dict], slices: dict[str, Slice], present: tuple[str, ...], parts: tuple[str, ...]
) -> list[str]:
    names = {s.name: s for s in slices.values()}
    event_parts = {s.name for s in names["notification-event"].parts.values()}
    unknown = (set(present) - set(names)) | (set(parts) - event_parts)
    assert not unknown, f"the profile declares no {sorted(unknown)}"
    found = [f"parameter {n} missing" for n in present if n not in {i.get("name") for i in items}]
    for event in (i for i in items if i.get("name") == "notification-event"):
        given = {p.get("name") for p in event.get("part") or []}
        found += [f"notification-event part {n} missing" for n in parts if n not in given]
    return found


def _check(items: list[dict], slices: dict[str, Slice], where: str) -> list[str]:
    found = []
    for described in slices.values():
        matching = [item for item in items if item.get("name") == described.name]
        high = described.maximum if described.maximum is not None else len(matching)
        if not described.minimum <= len(matching) <= high:
            found.append(f"{where} {described.name}: {len(matching)} present")
        for item in matching:
            found += _check_value(item, described, f"{where} {described.name}")
            found += _check(
                item.get("part") or [], described.parts, f"{where} {described.name}.part"
            )
    return found


def _check_value(item: dict, described: Slice, where: str) -> list[str]:
    values = {k: v for k, v in item.items() if k.startswith("value")}
    if len(values) < described.value_minimum:
        return [f"{where}: no value"]
    allowed = {"value" + TYPE_SUFFIX.get(t, t) for t in described.value_types}
    found = [
        f"{where}: {key} is not one of {sorted(allowed)}"
        for key in values
        if allowed and key not in allowed
    ]
    if described.name in BINDINGS and values:
        code = next(iter(values.values()))
        if code not in BINDINGS[described.name]:
            found.append(f"{where}: {code!r} is not in the bound value set")
    return found
