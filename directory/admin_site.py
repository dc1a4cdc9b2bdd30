"""The admin's name, and the page its "View site" link opens: the directory as its FHIR API
serves it (base URL, resource types, their search parameters and profiles).

The admin has its own listener that serves /admin/ only (deploy/nginx), so "View site" cannot
open the API itself; this page, behind the admin's sign-in, says what the API offers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from django.conf import settings
from django.contrib import admin
from django.contrib.admin import AdminSite
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse, reverse_lazy

from .profiles import profile_urls
from .profiles.definitions import definitions
from .registry import RESOURCES, SUPPORTED_TYPES

SITE_HEADER = "Healthcare Directory administration"
SITE_TITLE = "Healthcare Directory admin"
INDEX_TITLE = "Directory, API clients and trust"
OVERVIEW_URL_NAME = "directory-overview"
FHIR_VERSION = "4.0.1"


@dataclass(frozen=True)
class TypeRow:
    resource_type: str
    search_params: list[str]
    profiles: list[str]
    admin_url: str | None


def brand(site: AdminSite) -> None:
    """Names the directory on every admin page; "View site" opens the overview."""
    site.site_header = SITE_HEADER
    site.site_title = SITE_TITLE
    site.index_title = INDEX_TITLE
    # Lazy: the URLconf is not loaded yet when the site is branded; Django renders it as text.
    site.site_url = cast(str, reverse_lazy(OVERVIEW_URL_NAME))


def overview(request: HttpRequest) -> TemplateResponse:
    """The overview page; mounted behind `admin.site.admin_view` (sign-in, staff, no cache)."""
    site = admin.site
    context = {
        **site.each_context(request),
        "title": "The directory's FHIR API",
        "base_url": settings.FHIR_BASE_URL,
        "fhir_version": FHIR_VERSION,
        "types": [_row(site, t) for t in SUPPORTED_TYPES],
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin/directory/overview.html", context)


def _row(site: AdminSite, resource_type: str) -> TypeRow:
    profiles = [u for u in profile_urls() if definitions()[u].type == resource_type]
    return TypeRow(
        resource_type,
        sorted(RESOURCES[resource_type].params),
        profiles,
        _changelist(site, resource_type),
    )


def _changelist(site: AdminSite, resource_type: str) -> str | None:
    for model in site._registry:
        if getattr(model, "RESOURCE_TYPE", None) == resource_type:
            try:
                return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
            except NoReverseMatch:
                return None
    return None
