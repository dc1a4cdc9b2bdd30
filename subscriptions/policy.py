"""The worker's way to the API's authorization decision point (fhirapi/authorization.py).

Before each delivery the worker asks whether the subscription's owner, as it stands now, may be
sent what the notification carries. The answer is the API's own decision, registered here by the
fhirapi app when Django starts (imports run fhirapi > subscriptions, so the worker cannot import
it): one rule decides what a client may read, whether it asks over HTTP or is notified. Until a
decision is registered every delivery is refused, never allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from security.models import ApiClient

# (owner, interaction, resource types the notification carries) -> None, or a refusal reason
# code of security.refusal.REASONS.
Decision = Callable[[ApiClient, str, Iterable[str]], str | None]
UNREGISTERED = "policy-unavailable"

_decision: list[Decision] = []


def register(decision: Decision) -> None:
    """Install the decision point (fhirapi's AppConfig.ready); a second call replaces it."""
    _decision[:] = [decision]


def refusal(owner: ApiClient, interaction: str, resource_types: Iterable[str]) -> str | None:
    """None when `owner` may be sent `resource_types`; else why not (a reason code)."""
    if not _decision:
        return UNREGISTERED
    return _decision[0](owner, interaction, resource_types)
