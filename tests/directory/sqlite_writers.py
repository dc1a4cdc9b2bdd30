"""Concurrent writers on a SQLite database file, run in a process of its own.

`python -m tests.directory.sqlite_writers` with DATABASE_URL naming a SQLite file: migrates
it, then races threads through the storage service (what the API and the admin write through)
and prints what each got as JSON, for tests/directory/test_sqlite_writers.py. With `--register
DIR` it instead migrates the file and registers a directory client there (community, anchors,
CRLs, client, API key; a token from an issuer written to DIR) and prints the request headers and
the issuers file, for a real server on that file. The test database of the suite cannot show
this: it is in-memory and shared-cache, where a writer meeting another fails at once whatever the
transaction mode.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.core.management import call_command  # noqa: E402 - needs django.setup()
from django.db import connection  # noqa: E402

from directory import storage  # noqa: E402
from directory.models import ResourceVersion  # noqa: E402
from tests.factories import PractitionerFactory  # noqa: E402

THREADS = 6


def race(write: Callable[[int], object]) -> list[str]:
    """Run `write(n)` in THREADS threads released together; what failed, as 'Class: message'."""
    start = threading.Barrier(THREADS)
    failures: list[str] = []

    def run(number: int) -> None:
        start.wait()
        try:
            write(number)
        except Exception as exc:  # reported to the test, which judges it
            failures.append(f"{type(exc).__name__}: {exc}"[:200])
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def register(directory: Path) -> None:
    from tests.credentials import make_token_issuer, register_directory_client
    from tests.security.pki import build_pki
    from tests.security.trust import register_community

    call_command("migrate", verbosity=0)
    pki, issuer = build_pki(), make_token_issuer(directory)
    credentials = register_directory_client(pki, issuer, register_community(pki.a))
    secrets = [credentials.api_key, credentials.token]
    print(
        json.dumps(
            {"headers": credentials.http, "issuers": issuer.issuers_file, "secrets": secrets}
        )
    )


def main() -> None:
    if sys.argv[1:2] == ["--register"]:
        register(Path(sys.argv[2]))
        return
    call_command("migrate", verbosity=0)
    connection.close()
    same = PractitionerFactory.build(id="race-1")
    updates = race(lambda _: storage.update("Practitioner", "race-1", same))
    creates = race(lambda n: storage.create("Practitioner", PractitionerFactory.build()))
    versions = sorted(
        ResourceVersion.objects.filter(logical_id="race-1").values_list("version_id", flat=True)
    )
    print(json.dumps({"updates": updates, "creates": creates, "versions": versions}))


if __name__ == "__main__":
    main()
