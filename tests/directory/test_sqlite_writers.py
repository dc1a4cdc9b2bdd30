"""SQLite, the embedded default, under concurrent writers: they queue, none is refused.

A deferred SQLite transaction that reads and then writes cannot wait for the write lock (SQLite
refuses the upgrade at once with "database is locked"), so two simultaneous writes used to fail
one of them; settings open SQLite transactions IMMEDIATE, which waits on the busy timeout.
Run against a database file in a process of its own (tests/directory/sqlite_writers.py).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_concurrent_writes_to_a_sqlite_file_queue_instead_of_failing(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'writers.sqlite3'}"}
    done = subprocess.run(  # this interpreter and a module of the tests
        [sys.executable, "-m", "tests.directory.sqlite_writers"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    # Six updates of one id: each one a version, in order; six creates: all stored.
    assert outcome["updates"] == []
    assert outcome["versions"] == [1, 2, 3, 4, 5, 6]
    assert outcome["creates"] == []
