"""A digest of everything a database stores for its resources, to compare two import paths.

Lists every resource row, every version and every index row by (type, id) rather than primary
key, with `lastUpdated` masked (the only value that differs between two imports of one file),
sorted, then prints their count and SHA-256 and writes them to `--out` for a diff:

    DATABASE_URL=... .venv/bin/python bench/import_digest.py --out var/a.txt
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAST_UPDATED = re.compile(r'"lastUpdated":"[^"]*"')


def lines() -> list[str]:
    from django.db import connection

    from directory.models import Resource, ResourceVersion
    from directory.search.index import TABLES

    # Table and column names come from the models, never from input.
    resource = Resource._meta.db_table
    queries = [
        f"SELECT 'R', resource_type, logical_id, version_id, deleted, sort_name, content "  # noqa: S608
        f"FROM {resource}",
        f"SELECT 'V', resource_type, logical_id, version_id, method, content "  # noqa: S608
        f"FROM {ResourceVersion._meta.db_table}",
    ]
    for table in TABLES:
        columns = ", ".join(f"i.{c}" for c in table.copy_columns[1:])
        queries.append(
            f"SELECT '{table.model.__name__}', r.logical_id, {columns} "  # noqa: S608
            f"FROM {table.model._meta.db_table} i JOIN {resource} r ON r.id = i.resource_id"
        )
    found = []
    with connection.cursor() as cursor:
        for sql in queries:
            cursor.execute(sql)
            found += [LAST_UPDATED.sub('"lastUpdated":-', repr(row)) for row in cursor.fetchall()]
    return sorted(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    found = lines()
    args.out.write_text("\n".join(found) + "\n", encoding="utf-8")
    digest = hashlib.sha256("\n".join(found).encode()).hexdigest()
    print(f"{len(found)} rows, sha256 {digest}")


if __name__ == "__main__":
    main()
