"""Absolute URLs for resources, versions and search/history pages."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse


def base_url(request: HttpRequest) -> str:
    """The FHIR base: FHIR_BASE_URL when configured, else derived from this request's host."""
    if settings.FHIR_BASE_URL:
        return settings.FHIR_BASE_URL.rstrip("/")
    metadata = request.build_absolute_uri(reverse("fhirapi:metadata"))
    return metadata.rsplit("/", 1)[0]


def resource_url(base: str, resource_type: str, logical_id: str) -> str:
    return f"{base}/{resource_type}/{logical_id}"


def version_url(base: str, resource_type: str, logical_id: str, version_id: int) -> str:
    return f"{resource_url(base, resource_type, logical_id)}/_history/{version_id}"


def with_query(url: str, params: list[tuple[str, str]]) -> str:
    return f"{url}?{urlencode(params)}" if params else url
