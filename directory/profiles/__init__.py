"""Validation against StructureDefinitions: R4 invariants and bindings, and Plan-Net profiles."""

from __future__ import annotations

from .definitions import definitions, profile_urls, value_sets
from .invariants import compiled
from .validator import (
    allowed_targets,
    claimed_profiles,
    evaluated_constraints,
    known,
    validate_base,
    validate_profile,
)


def validate(resource: dict) -> list[dict]:
    """OperationOutcome issues for `resource`: R4 rules first, then each known claimed profile.

    Profiles the server does not know are accepted without checking (see data/README.md).
    """
    issues = validate_base(resource)
    if issues:
        return issues  # the profile passes would repeat the same failures
    for claimed in claimed_profiles(resource):
        url = claimed.split("|")[0]
        if known(url):
            issues += validate_profile(resource, url)
    return issues


def required_codes(path: str) -> frozenset | None:
    """The codes an R4 element (e.g. "Location.status") is bound to, if required and listed."""
    definition = definitions().get(path.split(".")[0])
    element = definition.by_id.get(path) if definition else None
    if element is None or element.binding is None:
        return None
    allowed = value_sets()[0].get(element.binding)
    return allowed.codes if allowed and allowed.grammar is None else None  # media types: unlisted


def warm() -> None:
    """Load the definitions and compile every enforced constraint (a process's first write)."""
    value_sets()
    for definition in definitions().values():
        for element in definition.by_id.values():
            for constraint in evaluated_constraints(element):
                compiled(constraint["expression"])


__all__ = ["allowed_targets", "known", "profile_urls", "required_codes", "validate", "warm"]
