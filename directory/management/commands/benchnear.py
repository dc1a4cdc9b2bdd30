"""Time `Location?near=` searches (median and p95) and show PostgreSQL's plan for each."""

import json
import statistics
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection
from django.test import Client, override_settings

from directory.models import PositionIndex, Resource
from directory.search.filters import filtered
from directory.search.paging import first_rows
from directory.search.params import parse
from directory.search.snapshots import sort_order

# {lat}|{lon} is the position of the directory's middle Location (a generated city centre).
QUERIES = [
    "Location?near={lat}|{lon}|1|km",
    "Location?near={lat}|{lon}|10|km",
    "Location?near={lat}|{lon}|10|km&_sort=near",
    "Location?near={lat}|{lon}|25|[mi_i]&_sort=near&_count=20",
    "Location?near={lat}|{lon}|100|km&_total=accurate&_count=20",
]


class Command(BaseCommand):
    help = "Time near searches through the HTTP stack; with --explain, EXPLAIN ANALYZE each."

    def add_arguments(self, parser):
        parser.add_argument("--repeat", type=int, default=20)
        parser.add_argument("--explain", action="store_true")

    def handle(self, *args, repeat, explain, **options):
        # As benchsearch: the search path alone, without client authentication or rate limits.
        search_only = [m for m in settings.MIDDLEWARE if "security.middleware." not in m]
        unlimited = {"RATE_LIMIT_PER_MINUTE": 0, "RATE_LIMIT_CONCURRENT": 0}
        with override_settings(MIDDLEWARE=search_only, **unlimited):
            self._run(repeat, explain)

    def _run(self, repeat: int, explain: bool):
        lat, lon = self._centre()
        locations = Resource.objects.filter(resource_type="Location", deleted=False).count()
        self.stdout.write(
            f"locations: {locations}, positions: {PositionIndex.objects.count()}, "
            f"centre {lat}|{lon}"
        )
        client = Client(HTTP_ACCEPT="application/fhir+json", SERVER_NAME="localhost")
        for template in QUERIES:
            path = template.format(lat=lat, lon=lon)
            timings, response = [], None
            for _ in range(repeat):
                start = time.perf_counter()
                response = client.get("/fhir/" + path)
                timings.append((time.perf_counter() - start) * 1000)
            timings.sort()
            p95 = timings[max(0, int(len(timings) * 0.95) - 1)]
            body = response.json()
            self.stdout.write(
                f"{statistics.median(timings):8.1f} ms median {p95:8.1f} ms p95  status "
                f"{response.status_code} entries {len(body.get('entry', []))} "
                f"total {body.get('total')}  {path}"
            )
            if explain:
                self._explain(path)

    def _centre(self) -> tuple[float, float]:
        rows = PositionIndex.objects.filter(resource_type="Location").order_by("resource_id")
        middle = rows[rows.count() // 2]
        return round(middle.latitude, 4), round(middle.longitude, 4)

    def _explain(self, path: str):
        """The plan of the first page's id query, as the engine runs it."""
        query = path.partition("?")[2]
        pairs = [tuple(p.split("=", 1)) for p in query.split("&")]
        plan = parse("Location", pairs, strict=True)
        matches = filtered(plan)
        order = sort_order(plan) if plan.sort else ["pk"]
        ids = matches.order_by(*order).values("pk")[: plan.page_size + 1]
        sql, params = ids.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
            explained = cursor.fetchone()[0]
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            text = "\n".join(row[0] for row in cursor.fetchall())
        if isinstance(explained, str):
            explained = json.loads(explained)
        self.stdout.write(f"  execution {explained[0]['Execution Time']:.2f} ms\n{text}\n")
        first_rows(matches, order, plan.page_size + 1)  # the page read as the engine reads it
