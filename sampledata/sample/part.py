"""What SampleBuilder shares with each of its parts, declared once for the type checker."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .organizations import Slot


class Part:
    """Base of SampleBuilder's parts; SampleBuilder sets the attributes and defines the methods."""

    rng: random.Random
    slots: dict[str, list[Slot]]

    if TYPE_CHECKING:

        def add(self, content: dict) -> None: ...

        def new_npi(self, leading: str = "1") -> str: ...

        def offer(self, specialties: Iterable[str], slot: Slot) -> None: ...
