"""Measure FHIR search latency against the current database, through the full HTTP stack."""

from __future__ import annotations

import json
import statistics
import time
from argparse import ArgumentParser
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection
from django.db.models import Count
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from directory.models import ReferenceIndex, Resource, StringIndex, TokenIndex
from directory.references import restful_key

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse


NUCC = "http://nucc.org/provider-taxonomy"

# Typical directory look-ups; the {placeholders} are filled from the data itself (see
# `sample_values`), so each query has matches.
QUERIES = [
    "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|{npi}",
    "Practitioner?family={family}",
    "Practitioner?name={family}&_count=50",
    "Practitioner?name:contains={family_mid}",
    "Practitioner?_sort=name&_count=50",
    f"PractitionerRole?specialty={NUCC}|207RC0000X&_include=PractitionerRole:practitioner",
    "PractitionerRole?organization=Organization/{org}&_include=PractitionerRole:location",
    "Organization?address-city={city}",
    "Location?address-state={state}&_total=accurate",
    "Organization?_id={org}&_revinclude=PractitionerRole:organization",
    "Endpoint?connection-type=hl7-fhir-rest&_count=100",
    "Practitioner?_lastUpdated=gt2000-01-01&_count=100",
    # National-directory forms (issue 9): chains, reverse chains, distance, extension parameters.
    "PractitionerRole?location.address-city={role_city}",
    "PractitionerRole?practitioner.name={family}",
    "Organization?partof.name={system_name}",
    "PractitionerRole?location.organization.name={site_org_name}",
    f"Practitioner?_has:PractitionerRole:practitioner:specialty={NUCC}|{{specialty}}",
    "Location?near={latitude}|{longitude}|10|km",
    "PractitionerRole?network=Organization/{network}",
    "PractitionerRole?organization=Organization/{role_org}&_include=PractitionerRole:organization"
    "&_include:iterate=Organization:partof",
    "PractitionerRole?organization.partof.name={system_name}",
    f"Organization?_has:PractitionerRole:organization:specialty={NUCC}|{{specialty}}",
    # The commonest specialty: a page fills after a few organizations or practitioners, so these
    # must not cost in proportion to the (many) roles that have it.
    f"Practitioner?_has:PractitionerRole:practitioner:specialty={NUCC}|{{common_specialty}}",
    f"Organization?_has:PractitionerRole:organization:specialty={NUCC}|{{common_specialty}}",
    # The commonest family: a chain through it must not cost in proportion to its practitioners.
    "Practitioner?family={common_family}",
    "PractitionerRole?practitioner.name={common_family}",
    "Organization?_has:Location:organization:_has:PractitionerRole:location:practitioner.family="
    "{common_family}",
    "Practitioner?_has:PractitionerRole:practitioner:location.address-city={role_city}",
    # The city most roles are at: its few locations fan out to many roles, so this must not cost
    # in proportion to them either.
    "Practitioner?_has:PractitionerRole:practitioner:location.address-city={busy_city}",
    "Organization?_has:Location:organization:_has:PractitionerRole:location:practitioner.family="
    "{family}",
    "PractitionerRole?practitioner=Practitioner/{practitioner}&_include:iterate=*",
]
NETWORK_REFERENCE = (
    "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/network-reference"
)
ROLES_TO_SCAN = 200  # roles looked at, from the middle, for one with a network and a position
EXPLAINED = 2  # with --explain: the slowest statements of one request whose plans are printed


class Command(BaseCommand):
    help = "Time typical searches (median and 95th percentile) and print one line per query."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--repeat", type=int, default=20)
        parser.add_argument(
            "--only", default="", help="Time only the query forms containing this text"
        )
        parser.add_argument(
            "--explain",
            action="store_true",
            help="Also print EXPLAIN (ANALYZE, BUFFERS) of each form's slowest statements",
        )

    def handle(self, *args: Any, repeat: int, only: str, explain: bool, **options: Any) -> None:
        # The search path is measured on its own: client authentication has nothing to say
        # about how a query scales with the directory's size.
        search_only = [m for m in settings.MIDDLEWARE if "security.middleware." not in m]
        # Nor do per-client request limits, which would refuse a long run from one address.
        unlimited = {"RATE_LIMIT_PER_MINUTE": 0, "RATE_LIMIT_CONCURRENT": 0}
        # Without the bearer check in the chain, the decision point grants nothing when a token is
        # required (a missing check must not open everything); here no token is the point.
        with override_settings(MIDDLEWARE=search_only, SECURITY_REQUIRE_BEARER=False, **unlimited):
            self._run(repeat, only, explain)

    def _run(self, repeat: int, only: str, explain: bool) -> None:
        values = {k: quote(str(v), safe="") for k, v in sample_values().items()}
        client = Client(HTTP_ACCEPT="application/fhir+json", SERVER_NAME="localhost")
        counts = {
            t: Resource.objects.filter(resource_type=t, deleted=False).count()
            for t in ("Organization", "Practitioner", "PractitionerRole", "Location", "Endpoint")
        }
        self.stdout.write(f"resources: {counts}")
        for template in (q for q in QUERIES if only in q):
            url = "/fhir/" + template.format(**values)
            first = client.get(url)
            if first.status_code == 400:
                # A form this server does not support (yet) is refused, not timed.
                self.stdout.write(f"skipped: status 400 ({refusal(first)})  {template}")
                continue
            timings, response = [], first
            for _ in range(repeat):
                start = time.perf_counter()
                response = client.get(url)
                timings.append((time.perf_counter() - start) * 1000)
            timings.sort()
            p95 = timings[max(0, int(len(timings) * 0.95) - 1)]
            body = response.json() if response.status_code == 200 else {}
            matches = sum(
                1 for e in body.get("entry", []) if e.get("search", {}).get("mode") == "match"
            )
            self.stdout.write(
                f"{statistics.median(timings):8.1f} ms median {p95:8.1f} ms p95  "
                f"status {response.status_code} total {body.get('total')} "
                f"matches on page 1 {matches}  {template}"
            )
            if explain:
                self._explain(client, url)

    def _explain(self, client: Client, url: str) -> None:
        """The plans of the slowest statements one request runs, as PostgreSQL executes them."""
        if connection.vendor != "postgresql":
            self.stdout.write("  (--explain needs PostgreSQL)")
            return
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        selects = [q for q in captured.captured_queries if q["sql"].startswith("SELECT")]
        slowest = sorted(selects, key=lambda q: -float(q["time"]))[:EXPLAINED]
        with connection.cursor() as cursor:
            for statement in slowest:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement["sql"])
                plan = "\n".join("    " + row[0] for row in cursor.fetchall())
                self.stdout.write(f"  {statement['sql'][:2000]}\n{plan}")


def refusal(response: TestResponse) -> str:
    """The first issue's diagnostics of an OperationOutcome, shortened."""
    try:
        issues = response.json().get("issue") or [{}]
    except ValueError:
        return "no OperationOutcome"
    return str(issues[0].get("diagnostics") or issues[0].get("code"))[:120]


def middle(resource_type: str) -> dict:
    rows = Resource.objects.filter(resource_type=resource_type, deleted=False)
    row = rows.order_by("id")[rows.count() // 2 :].first()
    return json.loads(row.live_content()) if row else {}


def _target_id(reference: dict) -> str:
    key = restful_key(reference.get("reference"))
    return key[1] if key else "none"


def read(reference: dict | None) -> dict:
    """The stored content a relative reference names, or {}."""
    key = restful_key((reference or {}).get("reference"))
    if key is None:
        return {}
    resource_type, logical_id = key
    row = Resource.objects.filter(
        resource_type=resource_type, logical_id=logical_id, deleted=False
    ).first()
    return json.loads(row.live_content()) if row else {}


def sample_role() -> dict:
    """A role from the middle of the data, preferring one in a network at a placed location."""
    rows = Resource.objects.filter(resource_type="PractitionerRole", deleted=False)
    start = rows.count() // 2
    fallback: dict = {}
    for row in rows.order_by("id")[start : start + ROLES_TO_SCAN]:
        role = json.loads(row.live_content())
        fallback = fallback or role
        networks = [e for e in role.get("extension", []) if e.get("url") == NETWORK_REFERENCE]
        if networks and role.get("location"):
            return role
    return fallback


def sample_values() -> dict:
    """Query values taken from the stored directory, so that every query has matches."""
    practitioner, organization = middle("Practitioner"), middle("Organization")
    location = middle("Location")
    family = (practitioner.get("name") or [{}])[0].get("family", "Smith")
    role = sample_role()
    site = read((role.get("location") or [None])[0])
    site_org = read(site.get("managingOrganization"))
    role_org = read(role.get("organization"))
    networks = [e for e in role.get("extension", []) if e.get("url") == NETWORK_REFERENCE]
    position = site.get("position") or {}
    return {
        "npi": (practitioner.get("identifier") or [{}])[0].get("value", "0"),
        "family": family,
        "family_mid": family[1:4],
        "org": organization.get("id", "none"),
        "practitioner": practitioner.get("id", "none"),
        "city": (organization.get("address") or [{}])[0].get("city", "Boston"),
        "state": (location.get("address") or {}).get("state", "MA"),
        "role_city": (site.get("address") or {}).get("city", "Boston"),
        "site_org_name": site_org.get("name", "none"),
        "system_name": system_name(),
        "specialty": ((role.get("specialty") or [{}])[0].get("coding") or [{}])[0].get(
            "code", "207RC0000X"
        ),
        "latitude": position.get("latitude", 42.36),
        "longitude": position.get("longitude", -71.06),
        "network": _target_id(networks[0]["valueReference"]) if networks else "none",
        "role_org": role_org.get("id", "none"),
        "common_specialty": common_specialty(),
        "common_family": common_family(),
        "busy_city": busy_city(),
    }


def common_specialty() -> str:
    """The NUCC code most roles have as their specialty."""
    codes = TokenIndex.objects.filter(
        resource_type="PractitionerRole", param="specialty", system=NUCC
    )
    top = codes.values("code").annotate(roles=Count("id")).order_by("-roles", "code").first()
    return top["code"] if top else "207RC0000X"


def common_family() -> str:
    """The (folded) family name most practitioners have."""
    rows = StringIndex.objects.filter(resource_type="Practitioner", param="family")
    top = rows.values("value").annotate(n=Count("id")).order_by("-n", "value").first()
    return top["value"] if top else "smith"


def busy_city() -> str:
    """The city (folded) whose locations the most roles are at."""
    at = ReferenceIndex.objects.filter(
        resource_type="PractitionerRole", param="location", target_type="Location"
    )
    roles = dict(at.values_list("target_id").annotate(n=Count("id")).order_by())
    cities = StringIndex.objects.filter(resource_type="Location", param="address-city")
    per_city: dict[str, int] = {}
    for location, city in cities.values_list("resource__logical_id", "value"):
        per_city[city] = per_city.get(city, 0) + roles.get(location, 0)
    return min(per_city, key=lambda city: (-per_city[city], city), default="boston")


def system_name() -> str:
    """The name of a health system: an organization that provider organizations are part of."""
    rows = Resource.objects.filter(resource_type="Organization", deleted=False)
    parts = rows.filter(content__contains='"partOf"').exclude(content__contains='"ntwk"')
    for row in parts.order_by("id")[:50]:
        parent = read(json.loads(row.live_content()).get("partOf"))
        if parent.get("name"):
            return parent["name"]
    return "none"
