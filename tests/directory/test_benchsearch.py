"""`benchsearch`: its query values come from the data and every query form has matches."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from directory.management.commands import benchsearch
from directory.models import Resource

NETWORK = benchsearch.NETWORK_REFERENCE
NUCC = benchsearch.NUCC


@pytest.fixture
def directory(db) -> dict[tuple[str, str], dict]:
    call_command("generatedirectory", practitioners=400, seed=12, stdout=StringIO())
    # As the benchmark is run (after VACUUM ANALYZE): statistics left by earlier tests' data, or
    # by an ANALYZE of the empty tables, can give the nested `_has` a plan that runs for minutes.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    rows = Resource.objects.filter(deleted=False).values_list(
        "resource_type", "logical_id", "content"
    )
    return {(t, i): json.loads(c) for t, i, c in rows}


def target(stored: dict, reference: dict | None) -> dict:
    resource_type, _, logical_id = (reference or {}).get("reference", "").partition("/")
    return stored.get((resource_type, logical_id), {})


def starts(value: str | None, prefix: str) -> bool:
    return bool(value) and value.lower().startswith(prefix.lower())


def km(lat1, lon1, lat2, lon2) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371 * math.asin(math.sqrt(a))


def test_sample_values_select_something_for_every_new_form(directory):
    """An oracle over the stored JSON: each sampled value matches at least one resource the way
    the query form means it (string parameters match a case-insensitive prefix)."""
    values = benchsearch.sample_values()
    of_type = lambda t: [c for (rt, _), c in directory.items() if rt == t]  # noqa: E731
    roles = of_type("PractitionerRole")
    assert any(
        starts(target(directory, loc).get("address", {}).get("city"), values["role_city"])
        for r in roles
        for loc in r.get("location", [])
    )
    assert any(
        starts(n.get("family"), values["family"])
        for r in roles
        for n in target(directory, r["practitioner"]).get("name", [])
    )
    assert any(
        starts(target(directory, o.get("partOf")).get("name"), values["system_name"])
        for o in of_type("Organization")
    )
    assert any(
        starts(
            target(directory, target(directory, loc).get("managingOrganization")).get("name"),
            values["site_org_name"],
        )
        for r in roles
        for loc in r.get("location", [])
    )
    assert any(
        c["code"] == values["specialty"] for r in roles for s in r["specialty"] for c in s["coding"]
    )
    codings = [c for r in roles for s in r["specialty"] for c in s["coding"]]
    specialties = Counter(c["code"] for c in codings if c.get("system") == NUCC)
    assert specialties[values["common_specialty"]] == max(specialties.values())
    assert any(
        km(values["latitude"], values["longitude"], p["latitude"], p["longitude"]) <= 10
        for p in (loc.get("position") for loc in of_type("Location"))
        if p
    )
    assert any(
        e["valueReference"]["reference"] == f"Organization/{values['network']}"
        for r in roles
        for e in r.get("extension", [])
        if e["url"] == NETWORK
    )
    assert any(
        r["organization"]["reference"] == f"Organization/{values['role_org']}" for r in roles
    )


def test_every_form_is_timed_with_matches_or_skipped_as_refused(directory):
    out = StringIO()
    call_command("benchsearch", repeat=1, stdout=out)
    lines = out.getvalue().splitlines()[1:]
    assert len(lines) == len(benchsearch.QUERIES)
    for line, template in zip(lines, benchsearch.QUERIES, strict=True):
        assert line.endswith(template)
        if line.startswith("skipped:"):
            assert "status 400" in line
        else:
            found = re.search(r"status (\d+) .* matches on page 1 (\d+)", line)
            assert found and found[1] == "200" and int(found[2]) >= 1, line
