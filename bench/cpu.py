"""The CPU each party spends on a wrk run, read from Linux's /proc: where a request's cost goes.

Throughput on a fixed number of cores is bounded by the CPU one request costs all the processes
that serve it, so a benchmark that reports only req/s cannot say why one target is slower. This
samples, around each run, the CPU time of the target's gunicorn (master, workers and their
threads), the PostgreSQL processes (backends of the benchmark's database and the shared WAL and
background writers), the target's edge nginx and the client side (the client-side nginx and
wrk). Runs are sequential, so what the shared processes spend during a run is that run's.
Each process is counted by its own growth between the samples: a backend that closes (Django's
CONN_MAX_AGE) takes its past CPU with it, and a new one is counted from zero; what one that exits
during a run had spent in it is not counted.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# PostgreSQL's own processes that every write's commit or flush goes through.
POSTGRES_SHARED = ("walwriter", "wal writer", "background writer", "checkpointer")
PARTIES = ("app", "postgres", "edge", "client")


@dataclass(frozen=True)
class Roots:
    """The processes of one target: its gunicorn master and, through nginx, its edge's master."""

    app: int
    edge: int | None = None


@dataclass
class Sample:
    # Party -> process id -> CPU seconds so far (the client's own children under id 0).
    seconds: dict[str, dict[int, float]] = field(default_factory=dict)


def available() -> bool:
    return (PROC / "self" / "stat").exists()


def _stat(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:  # gone since the listing
        return None
    # The command name is in parentheses and may hold spaces: fields start after the last ')'.
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) process `pid` has spent so far; 0 once it is gone."""
    fields = _stat(pid)
    # utime and stime are fields 14 and 15 of proc(5); 12 and 13 after the name.
    return (int(fields[11]) + int(fields[12])) / TICKS if fields else 0.0


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def _tree(root: int, children: dict[int, list[int]]) -> list[int]:
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _postgres(database: str) -> list[int]:
    """Backends connected to `database` (their title names it) and the shared writers."""
    pids = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if not title.startswith("postgres: "):
            continue
        words = title.split()
        if database in words[1:4] or any(name in title for name in POSTGRES_SHARED):
            pids.append(int(entry.name))
    return pids


def sample(roots: Roots, client_root: int | None, database: str) -> Sample:
    """CPU seconds so far of each party of one target (processes that exited are not counted)."""
    children = _children()
    own = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk runs are this process's children
    client = {pid: cpu_seconds(pid) for pid in _tree(client_root, children)} if client_root else {}
    return Sample(
        {
            "app": {pid: cpu_seconds(pid) for pid in _tree(roots.app, children)},
            "postgres": {pid: cpu_seconds(pid) for pid in _postgres(database)},
            "edge": {pid: cpu_seconds(pid) for pid in _tree(roots.edge, children)}
            if roots.edge
            else {},
            "client": client | {0: own.ru_utime + own.ru_stime},
        }
    )


def per_request(before: Sample, after: Sample, requests: int) -> dict[str, float]:
    """Milliseconds of CPU per request, by party."""
    if requests <= 0:
        return {party: float("nan") for party in PARTIES}
    return {party: 1000 * _growth(before, after, party) / requests for party in PARTIES}


def _growth(before: Sample, after: Sample, party: str) -> float:
    earlier = before.seconds[party]
    return sum(
        max(0.0, spent - earlier.get(pid, 0.0)) for pid, spent in after.seconds[party].items()
    )
