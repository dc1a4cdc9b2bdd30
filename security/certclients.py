"""Per-process memo of which client a verified certificate belongs to.

Finding the client is a query on every request otherwise. A remembered answer is used for at
most settings.SECURITY_CACHE_SECONDS (the bound the API-key and trust caches already keep), and
this process forgets it at once when it changes a client or an identity: status, scopes and
community changes go through `forget_client`, and any save or delete of an ApiClient or a
CertificateIdentity (signals, connected in SecurityConfig.ready) drops entries too. Other
processes catch up within the bound. The status is still compared on every request, and only
found clients are remembered, so a newly registered identity works at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction

from .models import ApiClient, CertificateIdentity

_CLIENT_FIELDS = [f.attname for f in ApiClient._meta.concrete_fields]
_ID = _CLIENT_FIELDS.index("id")
_LIMIT = 10_000


@dataclass(frozen=True)
class _Found:
    client_values: tuple
    fetched: float

    def to_instance(self) -> ApiClient:
        # A fresh instance per request: nothing a request sets on it leaks into the next.
        return ApiClient.from_db("default", _CLIENT_FIELDS, self.client_values)


_memo: dict[tuple[str, int], _Found] = {}
_lock = threading.Lock()


def remembered(fingerprint: str, community_id: int) -> ApiClient | None:
    """The client found for this certificate in this community, if found recently enough."""
    found = _memo.get((fingerprint, community_id))
    if found is None or time.monotonic() - found.fetched >= settings.SECURITY_CACHE_SECONDS:
        return None
    return found.to_instance()


def remember(fingerprint: str, community_id: int, client: ApiClient) -> None:
    values = tuple(getattr(client, name) for name in _CLIENT_FIELDS)
    with _lock:
        if len(_memo) >= _LIMIT:
            _memo.clear()
        _memo[(fingerprint, community_id)] = _Found(values, time.monotonic())


def forget_client(client_id: int) -> None:
    """Drop every certificate remembered for one client."""
    with _lock:
        for key in [k for k, found in _memo.items() if found.client_values[_ID] == client_id]:
            del _memo[key]


def clear() -> None:
    with _lock:
        _memo.clear()


def _forget_now_and_at_commit(forget: Callable[[], None]) -> None:
    # Again at commit: a request in another thread may re-read the row before the change commits.
    forget()
    transaction.on_commit(forget)


def client_changed(sender: Any, instance: ApiClient, **kwargs: Any) -> None:
    """Signal receiver: a saved or deleted client is read afresh."""
    _forget_now_and_at_commit(partial(forget_client, instance.pk))


def identity_changed(sender: Any, instance: CertificateIdentity, **kwargs: Any) -> None:
    """Signal receiver: a new or removed identity can change any certificate's answer (two
    clients claiming one certificate are trusted neither), so everything is read afresh."""
    _forget_now_and_at_commit(clear)
