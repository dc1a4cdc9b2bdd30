"""A walked search's time in process, this checkout's `probes.py` against another revision's.

Loads `directory/search/probes.py` as it was at `--before` (git) beside the current one and
swaps the two into the search's paging every other round, so both run in one process, on one
database and under the same load. Each form is first searched under both and must give the
same rows. Prints per form the median wall time and this process's CPU time (the database's
own work is not in it) of `search()`.

    DATABASE_URL=postgres://.../db python -m bench.walk_statements --before main --rounds 40

The forms walk on the 20,000-practitioner directory (`generatedirectory --practitioners 20000
--seed 7 --workers 1 --no-reference-check`): their innermost matches pass `COMMON`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

FORMS = [
    ("PractitionerRole", "practitioner.name", "s"),
    ("PractitionerRole", "practitioner.name", "a"),
    ("PractitionerRole", "practitioner.name", "m"),
    ("Organization", "_has:PractitionerRole:organization:practitioner.name", "s"),
    ("Organization", "_has:PractitionerRole:organization:practitioner.name", "a"),
    ("Practitioner", "_has:PractitionerRole:practitioner:location.address-city", "s"),
    ("Practitioner", "_has:PractitionerRole:practitioner:location.address-city", "b"),
]


def _probes_at(revision: str) -> ModuleType:
    """`probes.py` of `revision`, a module of the same package (its relative imports work)."""
    source = subprocess.run(  # noqa: S603 - git with a revision given on our command line
        ["git", "show", f"{revision}:directory/search/probes.py"],  # noqa: S607 - git on PATH
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as file:
        file.write(source)
    spec = importlib.util.spec_from_file_location("directory.search.probes_before", file.name)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load probes.py of {revision}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    Path(file.name).unlink()
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="main", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=40)
    options = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from directory.search import SearchRequest, paging, probes, search

    versions = {"before": _probes_at(options.before), "after": probes}

    def run(version: str, form: tuple[str, str, str]) -> list[str]:
        module: Any = versions[version]
        paging.probes, paging.probed_rows = module.probes, module.probed_rows  # type: ignore[attr-defined]
        request = SearchRequest(form[0], [(form[1], form[2])])
        return [entry.row.logical_id for entry in search(request).entries]

    for form in FORMS:
        if run("before", form) != run("after", form):
            raise SystemExit(f"different rows: {form}")
    wall: dict[tuple, list[float]] = {}
    cpu: dict[tuple, list[float]] = {}
    for round_ in range(options.rounds):
        order = ["before", "after"] if round_ % 2 == 0 else ["after", "before"]
        for version in order:
            for form in FORMS:
                started, used = time.perf_counter(), time.process_time()
                run(version, form)
                wall.setdefault((version, form), []).append(time.perf_counter() - started)
                cpu.setdefault((version, form), []).append(time.process_time() - used)
    print(f"median of {options.rounds} rounds, ms: wall before -> after | CPU before -> after")
    for form in FORMS:
        ms = [
            1000 * statistics.median(times[(version, form)])
            for times in (wall, cpu)
            for version in ("before", "after")
        ]
        query = f"{form[0]}?{form[1]}={form[2]}"
        print(f"{query:78} {ms[0]:6.1f} -> {ms[1]:5.1f} | {ms[2]:5.1f} -> {ms[3]:5.1f}")


if __name__ == "__main__":
    main()
