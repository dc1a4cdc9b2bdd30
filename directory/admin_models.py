"""Proxy models of Resource, one per resource type: each gets its own admin and permissions."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from django.db import models

from .models import Resource

__all__ = [
    "EndpointRecord",
    "GroupRecord",
    "HealthcareServiceRecord",
    "InsurancePlanRecord",
    "LocationRecord",
    "OrganizationAffiliationRecord",
    "OrganizationRecord",
    "PractitionerRecord",
    "PractitionerRoleRecord",
    "SearchParameterRecord",
]


_Record = TypeVar("_Record", bound=Resource)


class LiveResourceManager(models.Manager[_Record]):
    """Current, not deleted resources of the proxy's resource type."""

    def get_queryset(self) -> models.QuerySet[_Record]:
        rtype = cast("type[RecordMixin]", self.model).RESOURCE_TYPE
        return super().get_queryset().filter(resource_type=rtype, deleted=False)


class RecordMixin:
    """Shared behaviour of the per-type proxies (a plain mixin: no model, no permissions)."""

    RESOURCE_TYPE = ""
    if TYPE_CHECKING:  # Resource's fields, which the proxies mixing this in have
        pk: Any
        content: str | None
        logical_id: str
        version_id: int
        last_updated: datetime

    @property
    def data(self) -> dict[str, Any]:
        """The resource JSON, parsed once per row."""
        if not hasattr(self, "_data"):
            self._data = json.loads(self.content) if self.content else {}
        return self._data

    def __str__(self) -> str:
        from .admin_summary import display_name

        return f"{display_name(self.RESOURCE_TYPE, self.data)} ({self.logical_id})"


class OrganizationRecord(RecordMixin, Resource):
    RESOURCE_TYPE = "Organization"
    objects: ClassVar[LiveResourceManager[Any]] = LiveResourceManager()

    class Meta:
        proxy = True
        verbose_name = "organization"


class PractitionerRecord(RecordMixin, Resource):
    RESOURCE_TYPE = "Practitioner"
    objects: ClassVar[LiveResourceManager[Any]] = LiveResourceManager()

    class Meta:
        proxy = True
        verbose_name = "practitioner"


class PractitionerRoleRecord(RecordMixin, Resource):
    RESOURCE_TYPE = "PractitionerRole"
    objects: ClassVar[LiveResourceManager[Any]] = LiveResourceManager()

    class Meta:
        proxy = True
        verbose_name = "practitioner role"


class LocationRecord(RecordMixin, Resource):
    RESOURCE_TYPE = "Location"
    objects: ClassVar[LiveResourceManager[Any]] = LiveResourceManager()

    class Meta:
        proxy = True
        verbose_name = "location"


class EndpointRecord(RecordMixin, Resource):
    RESOURCE_TYPE = "Endpoint"
    objects: ClassVar[LiveResourceManager[Any]] = LiveResourceManager()

    class Meta:
        proxy = True
        verbose_name = "endpoint"


class HealthcareServiceRecord(RecordMixin, Resource):
    RESOURCE_TYPE = "HealthcareService"
    objects: ClassVar[LiveResourceManager[Any]] = LiveResourceManager()

    class Meta:
        proxy = True
        verbose_name = "healthcare service"


class OrganizationAffiliationRecord(RecordMixin, Resource):
    RESOURCE_TYPE = "OrganizationAffiliation"
    objects: ClassVar[LiveResourceManager[Any]] = LiveResourceManager()

    class Meta:
        proxy = True
        verbose_name = "organization affiliation"


class InsurancePlanRecord(RecordMixin, Resource):
    RESOURCE_TYPE = "InsurancePlan"
    objects: ClassVar[LiveResourceManager[Any]] = LiveResourceManager()

    class Meta:
        proxy = True
        verbose_name = "insurance plan"


class GroupRecord(RecordMixin, Resource):
    RESOURCE_TYPE = "Group"
    objects: ClassVar[LiveResourceManager[Any]] = LiveResourceManager()

    class Meta:
        proxy = True
        verbose_name = "group"


class SearchParameterRecord(RecordMixin, Resource):
    """Custom search parameters (directory/customparams.py), written through storage too."""

    RESOURCE_TYPE = "SearchParameter"
    objects: ClassVar[LiveResourceManager[Any]] = LiveResourceManager()

    class Meta:
        proxy = True
        verbose_name = "custom search parameter"
