"""Finding processes for fault injection: children of a process, who holds a socket."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def children_of(pid: int) -> list[int]:
    listed = subprocess.run(  # noqa: S603 - fixed command, test only
        [shutil.which("ps") or "ps", "-o", "pid=", "--ppid", str(pid)],
        capture_output=True,
        text=True,
        check=False,
    )
    return [int(line) for line in listed.stdout.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def owner_of_local_port(port: int, candidates: list[int]) -> int | None:
    """Which of `candidates` holds the loopback TCP socket bound to local `port`."""
    inodes = _socket_inodes_on_port(port)
    for pid in candidates:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return pid
    return None


def _socket_inodes_on_port(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes
