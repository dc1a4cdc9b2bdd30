"""The import floor benchmark measures every part, and leaves the database as it found it.

It times nothing worth reading here (`python -m bench.import_floor` on a real import does); it
proves each validation part runs over an NDJSON file, each filled table is copied back with the
backend's CPU read, and the copies are dropped afterwards.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from bench import import_floor
from directory import storage
from tests.factories import OrganizationFactory, PractitionerFactory, PractitionerRoleFactory
from tests.servers import database_url

pytestmark = [pytest.mark.bench, pytest.mark.django_db(transaction=True)]


def test_every_part_is_measured_and_the_copies_are_dropped(tmp_path):
    url = database_url()  # skips on SQLite: the database part is PostgreSQL's
    stored = [
        OrganizationFactory.build(id="floor-org"),
        PractitionerFactory.build(id="floor-prac"),
        PractitionerRoleFactory.build(
            id="floor-role",
            practitioner={"reference": "Practitioner/floor-prac"},
            organization={"reference": "Organization/floor-org"},
        ),
    ]
    for content in stored:
        storage.update(content["resourceType"], content["id"], content)
    path = tmp_path / "lines.ndjson"
    path.write_text("".join(json.dumps(content) + "\n" for content in stored))

    checks = import_floor.validation_parts(path)
    parts = import_floor.storage_parts(url, resources=3)

    assert [label.split(" ")[0] for label, _ in checks] == [
        "parse",
        "structure",
        "validation",
        "extraction",
    ]
    assert all(ms > 0 for _, ms in checks)
    copied = {label.removeprefix("COPY into ") for label, _ in parts}
    assert {"directory_resource", "directory_resourceversion", "directory_referenceindex"} <= copied
    with psycopg.connect(url) as conn:
        left = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'floor_%'")
        assert left.fetchone()[0] == 0
