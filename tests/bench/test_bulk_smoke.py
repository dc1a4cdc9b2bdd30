"""The bulk benchmark works end to end on a tiny directory, and leaves it as it found it.

It measures nothing (`python -m bench.bulk` on a real directory does); it proves that the export
runs through the runner, both imports store every line, every transaction is committed over
HTTP with the full security chain, and what the run stored is removed afterwards.
"""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from bench import bulk, run

pytestmark = pytest.mark.bench


@pytest.fixture
def directory_database():
    if connection.vendor != "postgresql":
        pytest.skip("the benchmark runs on PostgreSQL")
    db = connection.settings_dict
    server = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}"
    name = f"{db['NAME']}_bulk"
    url = f"{server}/{name}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    saved = dict(run._env)
    run._env.update(run._django_env(url))
    run._django("migrate", "--noinput", "-v0")
    run._django("generatedirectory", "--practitioners", "40", "--seed", "7", capture=True)
    yield url
    run._env.clear()
    run._env.update(saved)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _resources(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM directory_resource").fetchone()[0]


def test_smoke_run_measures_every_step_and_removes_what_it_stored(directory_database, tmp_path):
    before = _resources(directory_database)
    report = bulk.main(
        [
            "--database", directory_database, "--resources", "150", "--bundles", "4",
            "--bundle-size", "10", "--server-workers", "1", "--workers", "2",
            "--work", str(tmp_path), "--out", str(tmp_path / "bulk.md"),
        ]
    )  # fmt: skip
    rows = {
        cells[0]: cells
        for line in report.splitlines()
        if line.startswith("| ") and not line.startswith("| step")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    assert set(rows) == {
        "system $export (runexports)",
        "import, fresh database",
        "import, directory",
        "transaction Bundles, c=1",
        "transaction Bundles, c=4",
    }
    # The export wrote every resource of the directory, before the run stored anything.
    assert rows["system $export (runexports)"][1] == f"{before:,} resources"
    for name in ("import, fresh database", "import, directory"):
        assert int(rows[name][1].split()[0].replace(",", "")) >= 150
    for name in ("transaction Bundles, c=1", "transaction Bundles, c=4"):
        assert rows[name][8] == "0", rows[name]  # failed Bundles
        assert int(rows[name][1].split()[0]) > 0
    for cells in rows.values():
        assert float(cells[3].replace(",", "")) > 0  # items/s
    assert _resources(directory_database) == before
    assert (tmp_path / "bulk.md").read_text() == report


def test_bundles_hold_whole_practitioner_groups():
    groups = [[{"id": f"{g}-{i}"} for i in range(n)] for g, n in enumerate([3, 4, 2, 5])]
    bundles = bulk._pack(groups, 7)
    assert [len(b) for b in bundles] == [7, 7]
    assert bulk._pack([[{"id": "big"}] * 9], 7) == [[{"id": "big"}] * 9]  # never split
