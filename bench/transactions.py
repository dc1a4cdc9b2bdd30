"""Transaction Bundles stored one by one (a tree before issue 11) and together (this tree), side
by side in one run: entries/s and SQL statements per entry.

    .venv/bin/python -m bench.transactions --database postgres://postgres@127.0.0.1:5432/txnbench \
        --before ../main-checkout --bundles 20 --bundle-size 100

Each measurement runs in a child process against one source tree (`--before` or this one), on a
fresh copy of a migrated template database (`<name>_tpl`, made once), so neither tree meets
the other's rows. The child POSTs `--bundles` transaction Bundles of `--bundle-size` creates
(Practitioners with an NPI, each followed by a PractitionerRole referring to it by urn:uuid)
through `fhirapi.transactions.process`, in process, with the per-request authorization stubbed
out: what is measured is parsing, validation, index extraction and storage, the part issue 11
changed, not the security chain (bench.bulk measures the whole HTTP path). Rounds alternate
trees, so a load change on a shared machine hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True, help="PostgreSQL URL; it is recreated")
    parser.add_argument("--before", type=Path, help="source tree to compare with (e.g. main)")
    parser.add_argument("--bundles", type=int, default=20)
    parser.add_argument("--bundle-size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        print(json.dumps(_measure(options.bundles, options.bundle_size)))
        return
    _template(options.database)
    trees = {"after": ROOT} | ({"before": options.before.resolve()} if options.before else {})
    results: dict[str, list[dict]] = {name: [] for name in trees}
    for _ in range(options.rounds):
        for name, tree in sorted(trees.items(), reverse=True):  # before, then after
            results[name].append(_child(options, tree))
    _report(options, results)


def _template(url: str) -> None:
    """A migrated empty database `<name>_tpl` each measurement copies."""
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}_tpl"')
        admin.execute(f'CREATE DATABASE "{name}_tpl"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        check=True,
        env=_env(f"{base}/{name}_tpl", ROOT),
    )


def _env(url: str, tree: Path) -> dict[str, str]:
    return os.environ | {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": url,
        "ENVIRONMENT": "test",
        "DEBUG": "false",
        "PYTHONPATH": str(tree),
    }


def _child(options: argparse.Namespace, tree: Path) -> dict:
    base, _, name = options.database.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{name}_tpl"')
    done = subprocess.run(  # noqa: S603 - fixed command
        [
            *(sys.executable, str(Path(__file__).resolve()), "--child"),
            *("--database", options.database, "--bundles", str(options.bundles)),
            *("--bundle-size", str(options.bundle_size)),
        ],
        cwd=tree,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        env=_env(options.database, tree),
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _bundle(number: int, size: int) -> dict:
    entries: list[dict[str, Any]] = []
    for n in range(size // 2):
        serial = number * size + n
        urn = f"urn:uuid:00000000-0000-4000-8000-{serial:012d}"
        practitioner = {
            "resourceType": "Practitioner",
            "active": True,
            "identifier": [{"system": NPI_SYSTEM, "value": _npi(serial)}],
            "name": [{"family": f"Family{serial}", "given": [f"Given{serial}"]}],
        }
        role = {
            "resourceType": "PractitionerRole",
            "active": True,
            "practitioner": {"reference": urn},
        }
        entries.append(
            {
                "fullUrl": urn,
                "resource": practitioner,
                "request": {"method": "POST", "url": "Practitioner"},
            }
        )
        entries.append({"resource": role, "request": {"method": "POST", "url": "PractitionerRole"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _npi(serial: int) -> str:
    """A valid NPI (Luhn over 80840 and nine digits) for each serial."""
    first = f"2{serial:08d}"
    digits = [int(c) for c in "80840" + first]
    total = 0
    for position, digit in enumerate(reversed(digits)):
        total += (digit * 2 - 9 if digit > 4 else digit * 2) if position % 2 == 0 else digit
    return first + str((10 - total % 10) % 10)


def _measure(bundles: int, size: int) -> dict:
    """In the child: POST the Bundles through transactions.process; entries/s, statements."""
    import django

    django.setup()
    from django.db import connection
    from django.test import RequestFactory
    from django.test.utils import CaptureQueriesContext
    from rest_framework.request import Request

    from fhirapi import authorization, transactions

    # Authorization is the security chain's, unchanged by issue 11: out of the measurement.
    authorization.authorize_bundle = lambda request, kind: None
    authorization.authorize_entry = lambda *args, **kwargs: None
    authorization.entry_decisions = lambda request, index: nullcontext()
    authorization.creation_guard = lambda request, resource_type: lambda: None
    bodies = [_bundle(number, size) for number in range(bundles)]
    request = Request(RequestFactory().post("/fhir", SERVER_NAME="localhost"))
    entries = statements = 0
    started = time.monotonic()
    for body in bodies:
        # One capture per Bundle on an emptied log: Django keeps the last 9,000 statements only.
        connection.queries_log.clear()
        with CaptureQueriesContext(connection) as captured:
            answer = transactions.process(request, body)
        entries += len(answer["entry"])
        statements += len(captured.captured_queries)
    seconds = time.monotonic() - started
    return {"entries": entries, "seconds": seconds, "statements": statements}


def _report(options: argparse.Namespace, results: dict[str, list[dict]]) -> None:
    print(f"{options.bundles} transaction Bundles of {options.bundle_size} creates, per round:")
    print("| tree | round | entries | seconds | entries/s | statements/entry |")
    print("| --- | --- | --- | --- | --- | --- |")
    best: dict[str, float] = {}
    for name in sorted(results, reverse=True):
        for number, result in enumerate(results[name], 1):
            rate = result["entries"] / result["seconds"]
            best[name] = max(best.get(name, 0.0), rate)
            per_entry = result["statements"] / result["entries"]
            print(
                f"| {name} | {number} | {result['entries']} | {result['seconds']:.2f} "
                f"| {rate:.0f} | {per_entry:.2f} |"
            )
    if "before" in best:
        print(f"\nbest after / best before: {best['after'] / best['before']:.1f}x")


if __name__ == "__main__":
    # Run as a file in the child: its folder (bench/, with a profile.py) must not shadow the
    # standard library; the tree measured comes from PYTHONPATH.
    sys.path[:] = [
        entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).parent
    ]
    main()
