"""Weighted random choice and the pipe-separated tables the data is written in."""

from __future__ import annotations

import random
from bisect import bisect
from itertools import accumulate


class Weighted:
    """Items with relative weights; `pick` is a binary search over cumulative weights."""

    def __init__(self, items, weights) -> None:
        self.items = list(items)
        self.cumulative = list(accumulate(weights))
        self.total = self.cumulative[-1]

    def pick(self, rng: random.Random):
        return self.items[bisect(self.cumulative, rng.random() * self.total)]


def _parse_table(text: str, columns: int) -> list[list[str]]:
    rows = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != columns:
            raise ValueError(f"bad table row: {line!r}")
        rows.append(parts)
    return rows
