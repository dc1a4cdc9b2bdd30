"""Measure FHIR search latency against the current database, through the full HTTP stack."""

import statistics
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.test import Client, override_settings

from directory.models import Resource

# Typical directory look-ups; {npi}, {city}, {org} and {family} are filled from the data itself.
QUERIES = [
    "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|{npi}",
    "Practitioner?family={family}",
    "Practitioner?name={family}&_count=50",
    "Practitioner?name:contains={family_mid}",
    "Practitioner?_sort=name&_count=50",
    "PractitionerRole?specialty=http://nucc.org/provider-taxonomy|207RC0000X"
    "&_include=PractitionerRole:practitioner",
    "PractitionerRole?organization=Organization/{org}&_include=PractitionerRole:location",
    "Organization?address-city={city}",
    "Location?address-state={state}&_total=accurate",
    "Organization?_id={org}&_revinclude=PractitionerRole:organization",
    "Endpoint?connection-type=hl7-fhir-rest&_count=100",
    "Practitioner?_lastUpdated=gt2000-01-01&_count=100",
    # Chains, _has and iterated includes: each hop a semi-join through the reference index.
    "PractitionerRole?practitioner.family={family}",
    "PractitionerRole?location.address-city={city}",
    "PractitionerRole?location.organization.name={org_name}",
    "PractitionerRole?organization.partof.name={org_name}",
    "Organization?_has:PractitionerRole:organization:specialty=207RC0000X",
    "Practitioner?_has:PractitionerRole:practitioner:location.address-city={city}",
    "Organization?_has:Location:organization:_has:PractitionerRole:location:practitioner.family={family}",
    "PractitionerRole?organization=Organization/{org}&_include=PractitionerRole:location"
    "&_include:iterate=Location:organization&_include:iterate=Organization:endpoint",
    "PractitionerRole?practitioner=Practitioner/{practitioner}&_include:iterate=*",
]


class Command(BaseCommand):
    help = "Time typical searches (median and 95th percentile) and print one line per query."

    def add_arguments(self, parser):
        parser.add_argument("--repeat", type=int, default=20)
        parser.add_argument(
            "--samples",
            type=int,
            default=1,
            help="Value sets drawn from the data (spread through it); timings pool over all",
        )

    def handle(self, *args, repeat, samples, **options):
        # The search path is measured on its own: client authentication has nothing to say
        # about how a query scales with the directory's size.
        search_only = [m for m in settings.MIDDLEWARE if "security.middleware." not in m]
        # Nor do per-client request limits, which would refuse a long run from one address.
        unlimited = {"RATE_LIMIT_PER_MINUTE": 0, "RATE_LIMIT_CONCURRENT": 0}
        # Without the bearer check in the chain, authorization would grant nothing (fail closed).
        unlimited["SECURITY_REQUIRE_BEARER"] = False
        with override_settings(MIDDLEWARE=search_only, **unlimited):
            self._run(repeat, samples)

    def _run(self, repeat, samples):
        value_sets = [self._sample_values((i + 1) / (samples + 1)) for i in range(samples)]
        client = Client(HTTP_ACCEPT="application/fhir+json", SERVER_NAME="localhost")
        counts = {
            t: Resource.objects.filter(resource_type=t, deleted=False).count()
            for t in ("Organization", "Practitioner", "PractitionerRole", "Location", "Endpoint")
        }
        self.stdout.write(f"resources: {counts}")
        for template in QUERIES:
            timings, status, total = [], None, None
            for values in value_sets:
                url = "/fhir/" + template.format(**values)
                for _ in range(repeat):
                    start = time.perf_counter()
                    response = client.get(url)
                    timings.append((time.perf_counter() - start) * 1000)
                    status = response.status_code
                    total = response.json().get("total") if status == 200 else None
            timings.sort()
            p95 = timings[max(0, int(len(timings) * 0.95) - 1)]
            self.stdout.write(
                f"{statistics.median(timings):8.1f} ms median {p95:8.1f} ms p95  "
                f"status {status} total {total}  {template}"
            )

    @staticmethod
    def _sample_values(fraction: float = 0.5) -> dict:
        import json

        def middle(resource_type):
            ids = Resource.objects.filter(resource_type=resource_type, deleted=False)
            at = int(ids.count() * fraction)
            row = ids.order_by("id")[at : at + 1].first()
            return json.loads(row.content) if row else {}

        practitioner, organization = middle("Practitioner"), middle("Organization")
        location = middle("Location")
        family = (practitioner.get("name") or [{}])[0].get("family", "Smith")
        # Chains through a location meet the organizations that manage locations.
        managing = (location.get("managingOrganization") or {}).get("reference", "/")
        manager = Resource.objects.filter(
            resource_type="Organization", logical_id=managing.partition("/")[2], deleted=False
        ).first()
        manager_name = json.loads(manager.content).get("name", "Acme") if manager else "Acme"
        return {
            "practitioner": practitioner.get("id", "none"),
            "org_name": " ".join(manager_name.split()[:2]),
            "npi": (practitioner.get("identifier") or [{}])[0].get("value", "0"),
            "family": family,
            "family_mid": family[1:4],
            "org": organization.get("id", "none"),
            "city": (organization.get("address") or [{}])[0].get("city", "Boston"),
            "state": (location.get("address") or {}).get("state", "MA"),
        }
