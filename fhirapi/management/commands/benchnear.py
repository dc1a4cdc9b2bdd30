"""Time `Location?near=` searches (median and p95) and show PostgreSQL's plan for each.

Timed is the search itself and its Bundle as JSON (directory.search and fhirapi.bundles), not
HTTP or client authentication, which have nothing to say about how the query scales.
"""

import json
import statistics
import time
from argparse import ArgumentParser
from typing import Any
from urllib.parse import parse_qsl

from django.core.management.base import BaseCommand
from django.db import connection

from directory.models import PositionIndex, Resource
from directory.search import SearchRequest, search
from directory.search.filters import filtered
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
    help = "Time near searches and their Bundles; with --explain, EXPLAIN ANALYZE each."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--repeat", type=int, default=20)
        parser.add_argument("--explain", action="store_true")

    def handle(self, *args: Any, repeat: int, explain: bool, **options: Any) -> None:
        lat, lon = self._centre()
        locations = Resource.objects.filter(resource_type="Location", deleted=False).count()
        self.stdout.write(
            f"locations: {locations}, positions: {PositionIndex.objects.count()}, "
            f"centre {lat}|{lon}"
        )
        for template in QUERIES:
            path = template.format(lat=lat, lon=lon)
            timings, body = [], {}
            for _ in range(repeat):
                start = time.perf_counter()
                body = json.loads(self._bundle_json(path))
                timings.append((time.perf_counter() - start) * 1000)
            timings.sort()
            p95 = timings[max(0, int(len(timings) * 0.95) - 1)]
            self.stdout.write(
                f"{statistics.median(timings):8.1f} ms median {p95:8.1f} ms p95  "
                f"entries {len(body.get('entry', []))} total {body.get('total')}  {path}"
            )
            if explain:
                self._explain(path)

    @staticmethod
    def _bundle_json(path: str) -> str:
        from fhirapi.bundles import searchset_bundle

        resource_type, _, query = path.partition("?")
        result = search(SearchRequest(resource_type, parse_qsl(query), owner="benchnear"))
        return json.dumps(searchset_bundle("http://localhost/fhir", resource_type, result))

    def _centre(self) -> tuple[float, float]:
        rows = PositionIndex.objects.filter(resource_type="Location").order_by("resource_id")
        middle = rows[rows.count() // 2]
        return round(middle.latitude, 4), round(middle.longitude, 4)

    def _explain(self, path: str) -> None:
        """The plan of the first page's id query, as the engine runs it."""
        plan = parse("Location", parse_qsl(path.partition("?")[2]), strict=True)
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
