"""Liveness and readiness probes: no certificate needed, nothing revealed but up or not."""

import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

logger = logging.getLogger("config.health")


@require_safe
def liveness(request: HttpRequest) -> JsonResponse:
    """200 while the process can answer at all."""
    return JsonResponse({"status": "ok"})


@require_safe
def readiness(request: HttpRequest) -> JsonResponse:
    """200 when the database answers a trivial query, 503 otherwise."""
    if _database_answers():
        return JsonResponse({"status": "ok"})
    return JsonResponse({"status": "unavailable"}, status=503)


def _database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError:
        # The probe answer stays bare; the operator finds the cause in the log.
        logger.exception("Readiness check: the database did not answer")
        return False
