"""Storage for FHIR resources: current versions, full history, and search index tables.

Search never scans JSON: every search parameter is extracted on write into narrow, indexed tables
(the layout large FHIR servers use), so queries stay index lookups at millions of resources.
"""

import uuid

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

ID_MAX = 64


class Resource(models.Model):
    """The current version of one resource (or its tombstone when deleted)."""

    id = models.BigAutoField(primary_key=True)
    resource_type = models.CharField(max_length=40)
    logical_id = models.CharField(max_length=ID_MAX)
    version_id = models.PositiveIntegerField()
    last_updated = models.DateTimeField()
    deleted = models.BooleanField(default=False)
    # JSON text, not jsonb: keeps FHIR element order and is served without re-encoding.
    content = models.TextField(null=True)
    sort_name = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["resource_type", "logical_id"], name="resource_type_id_uniq"
            ),
        ]
        indexes = [
            # last_updated rides along so `_lastUpdated` filters are checked in the index while
            # pages are read in id order, never visiting the rows of skipped resources; so does
            # logical_id, which `_has` checks each candidate's referrers by (search/chains.py).
            models.Index(
                fields=["resource_type", "id", "last_updated"],
                name="resource_live_idx",
                condition=models.Q(deleted=False),
                include=["logical_id"],
            ),
            # Partial like resource_live_idx: a sorted search reads ids straight from the index
            # (index-only) without visiting each row to check that it is not deleted.
            models.Index(
                fields=["resource_type", "last_updated", "id"],
                name="resource_updated_idx",
                condition=models.Q(deleted=False),
            ),
            models.Index(
                fields=["resource_type", "sort_name", "id"],
                name="resource_sortname_idx",
                condition=models.Q(deleted=False),
            ),
            # `_has` and chains meet resources by logical id (ReferenceIndex.target_id): this
            # answers "is it live, and what is its row id" from the index alone.
            models.Index(
                fields=["resource_type", "logical_id", "id"],
                name="resource_live_logical_idx",
                condition=models.Q(deleted=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.resource_type}/{self.logical_id}/_history/{self.version_id}"

    def live_content(self) -> str:
        """The JSON text of a live version; a deletion tombstone (NULL content) has none."""
        if self.content is None:
            raise ValueError(f"{self.resource_type}/{self.logical_id} is deleted")
        return self.content


class ResourceVersion(models.Model):
    """Every version ever written, including deletions; the id orders all history."""

    METHODS = [("POST", "create"), ("PUT", "update"), ("DELETE", "delete")]

    id = models.BigAutoField(primary_key=True)
    # No index of its own: version_uniq leads with the resource and serves every look-up by it,
    # and a second B-tree would cost each write one more insertion (migration 0025).
    resource = models.ForeignKey(
        Resource, on_delete=models.CASCADE, related_name="versions", db_index=False
    )
    resource_type = models.CharField(max_length=40)
    logical_id = models.CharField(max_length=ID_MAX)
    version_id = models.PositiveIntegerField()
    last_updated = models.DateTimeField()
    method = models.CharField(max_length=6, choices=METHODS)
    content = models.TextField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["resource", "version_id"], name="version_uniq"),
        ]
        indexes = [
            models.Index(fields=["resource_type", "id"], name="version_type_idx"),
            models.Index(fields=["last_updated", "id"], name="version_updated_idx"),
        ]

    def live_content(self) -> str:
        """The JSON text of a live version; a deletion tombstone (NULL content) has none."""
        if self.content is None:
            raise ValueError(f"{self.resource_type}/{self.logical_id} is deleted")
        return self.content


class StringIndex(models.Model):
    """String search values, case- and accent-folded for prefix and contains matching."""

    id = models.BigAutoField(primary_key=True)
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="+")
    resource_type = models.CharField(max_length=40)
    param = models.CharField(max_length=64)
    value = models.CharField(max_length=255)
    exact = models.CharField(max_length=255)

    class Meta:
        indexes = [
            # Ends in the resource id so a prefix search is answered from the index alone.
            models.Index(
                fields=["resource_type", "param", "value", "resource"],
                name="string_value_idx",
                opclasses=["varchar_ops", "varchar_ops", "varchar_pattern_ops", "int8_ops"],
            ),
            models.Index(
                fields=["resource_type", "param", "exact", "resource"], name="string_exact_idx"
            ),
        ]


class TokenIndex(models.Model):
    """Token search values: a code with its (possibly empty) system."""

    # Equality indexes end in the resource id: a search then reads matches in id order straight
    # from the index and merge-joins them with the live resources, stopping after one page.

    id = models.BigAutoField(primary_key=True)
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="+")
    resource_type = models.CharField(max_length=40)
    param = models.CharField(max_length=64)
    system = models.CharField(max_length=255, blank=True, default="")
    code = models.CharField(max_length=255)

    class Meta:
        indexes = [
            models.Index(
                fields=["resource_type", "param", "code", "system", "resource"],
                name="token_code_idx",
            ),
            models.Index(
                fields=["resource_type", "param", "system", "resource"], name="token_system_idx"
            ),
        ]


class ReferenceQuerySet(models.QuerySet["ReferenceIndex"]):
    def pointing_at(self, target_type: str, target_id: str) -> "ReferenceQuerySet":
        """The local references naming this resource (absolute URLs to other servers never do)."""
        return self.filter(target_type=target_type, target_id=target_id, external=False)

    def referrers(self) -> "models.QuerySet[ReferenceIndex, tuple[str, str]]":
        """(type, id) of the resources these references belong to."""
        return self.values_list("resource_type", "resource__logical_id")


class ReferenceIndex(models.Model):
    """Resolved references from one resource to another, for reference search and includes."""

    id = models.BigAutoField(primary_key=True)
    # No index of its own: reference_referrer_idx leads with the resource (as on Resource's
    # versions above).
    resource = models.ForeignKey(
        Resource, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    resource_type = models.CharField(max_length=40)
    param = models.CharField(max_length=64)
    target_type = models.CharField(max_length=40)
    target_id = models.CharField(max_length=ID_MAX)
    # Relative references must resolve on write; absolute URLs to other servers are kept as-is.
    external = models.BooleanField(default=False)

    objects = ReferenceQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(
                fields=["resource_type", "param", "target_id", "target_type", "resource"],
                name="reference_param_idx",
            ),
            models.Index(fields=["target_type", "target_id"], name="reference_target_idx"),
            # `_has` goes from referring resources to what they point at, index-only; the
            # referrers' type is a key column because `_has` names it (see search/chains.py).
            models.Index(
                fields=["resource", "param", "target_type", "resource_type", "target_id"],
                name="reference_referrer_idx",
            ),
        ]


class DateIndex(models.Model):
    """Date search values as the instant range [low, high) each date, dateTime or Period covers.

    An open end is stored as the earliest or latest representable instant, so every prefix is a
    plain comparison on an indexed column.
    """

    id = models.BigAutoField(primary_key=True)
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="+")
    resource_type = models.CharField(max_length=40)
    param = models.CharField(max_length=64)
    low = models.DateTimeField()
    high = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["resource_type", "param", "low", "resource"], name="date_low_idx"),
            models.Index(
                fields=["resource_type", "param", "high", "resource"], name="date_high_idx"
            ),
        ]


class UriIndex(models.Model):
    """URI search values (canonical, uri, url), matched exactly or by path prefix."""

    id = models.BigAutoField(primary_key=True)
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="+")
    resource_type = models.CharField(max_length=40)
    param = models.CharField(max_length=64)
    value = models.CharField(max_length=255)

    class Meta:
        indexes = [
            models.Index(
                fields=["resource_type", "param", "value", "resource"],
                name="uri_value_idx",
                opclasses=["varchar_ops", "varchar_ops", "varchar_pattern_ops", "int8_ops"],
            ),
        ]


class PositionIndex(models.Model):
    """A resource's geographic position (WGS84 degrees), for the `near` search (search/near.py).

    A B-tree orders one column: on latitude alone, a box would scan its whole latitude band
    around the globe. Positions are therefore grouped in 1-degree latitude bands (about 111 km),
    and a box reads, in each band it spans, only its longitude range.
    """

    id = models.BigAutoField(primary_key=True)
    # Served by position_resource_idx (deletes on write, the distance of each match).
    resource = models.ForeignKey(
        Resource, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    resource_type = models.CharField(max_length=40)
    param = models.CharField(max_length=64)
    band = models.SmallIntegerField()  # floor(latitude)
    latitude = models.FloatField()
    longitude = models.FloatField()

    class Meta:
        indexes = [
            # A box is a longitude range scan in each band it spans; latitude and the resource id
            # ride along so the box is checked and the semi-join answered from the index alone.
            models.Index(
                fields=["resource_type", "param", "band", "longitude", "latitude", "resource"],
                name="position_box_idx",
            ),
            # Sorting by distance reads each match's position here, index-only.
            models.Index(
                fields=["resource", "param", "latitude", "longitude"],
                name="position_resource_idx",
            ),
        ]


class BoundaryIndex(models.Model):
    """The bounding box of one polygon of a Location's boundary, for `contains` (contains.py).

    Like positions, boxes are filed by 1-degree latitude band, once for each band the box spans,
    so a point reads one band's boxes by longitude. `part` names the polygon in BoundaryShape.
    """

    id = models.BigAutoField(primary_key=True)
    resource = models.ForeignKey(
        Resource, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    resource_type = models.CharField(max_length=40)
    param = models.CharField(max_length=64)
    band = models.SmallIntegerField()  # floor(latitude), for each band from min_lat to max_lat
    min_lon = models.FloatField()
    max_lon = models.FloatField()
    min_lat = models.FloatField()
    max_lat = models.FloatField()
    part = models.IntegerField()

    class Meta:
        indexes = [
            # A point is a range scan over one band's boxes west of it; the other bounds, the
            # resource and its part ride along so candidates come from the index alone.
            models.Index(
                fields=[
                    "resource_type",
                    "param",
                    "band",
                    "min_lon",
                    "max_lon",
                    "min_lat",
                    "max_lat",
                    "resource",
                    "part",
                ],
                name="boundary_box_idx",
            ),
            models.Index(fields=["resource", "param"], name="boundary_resource_idx"),
        ]


class BoundaryShape(models.Model):
    """One polygon of a Location's boundary (hex WKB), tested exactly by `contains`."""

    id = models.BigAutoField(primary_key=True)
    resource = models.ForeignKey(
        Resource, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    resource_type = models.CharField(max_length=40)
    param = models.CharField(max_length=64)
    part = models.IntegerField()
    shape = models.TextField()

    class Meta:
        indexes = [
            models.Index(fields=["resource", "param", "part"], name="boundary_shape_idx"),
        ]


class SearchSnapshot(models.Model):
    """A frozen, ordered result list so pages of a sorted search stay consistent under writes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    expires = models.DateTimeField(db_index=True)
    resource_type = models.CharField(max_length=40)
    total = models.PositiveIntegerField()
    # Who asked (an opaque key from the API layer; empty for internal callers) and for which
    # normalised search: a client's repeated search reuses its snapshot, and each client holds
    # a bounded number of them (directory/search/snapshots.py).
    owner = models.CharField(max_length=100, blank=True, default="")
    query_digest = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["owner", "created"], name="snapshot_owner_idx")]


class SearchSnapshotEntry(models.Model):
    """One position of a snapshot, a row each (databases without arrays, e.g. SQLite)."""

    id = models.BigAutoField(primary_key=True)
    snapshot = models.ForeignKey(SearchSnapshot, on_delete=models.CASCADE, related_name="entries")
    position = models.PositiveIntegerField()
    resource_pk = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "position"], name="snapshot_position_uniq"),
        ]


class BigIntArrayField(models.Field):
    """A list of bigints: a native bigint[] on PostgreSQL; never written elsewhere."""

    def db_type(self, connection: BaseDatabaseWrapper) -> str | None:
        return "bigint[]" if connection.vendor == "postgresql" else "text"


class SearchSnapshotChunk(models.Model):
    """A run of consecutive snapshot positions as one array (PostgreSQL).

    Written in one INSERT ... SELECT of a few hundred rows per million matches, where a row per
    position costs seconds; a page reads one or two chunks.
    """

    SIZE = 1000

    id = models.BigAutoField(primary_key=True)
    # The unique (snapshot, chunk) index serves snapshot look-ups; no separate FK index.
    snapshot = models.ForeignKey(
        SearchSnapshot, on_delete=models.CASCADE, related_name="chunks", db_index=False
    )
    chunk = models.PositiveIntegerField()
    resource_pks = BigIntArrayField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "chunk"], name="snapshot_chunk_uniq"),
        ]


class UniqueIdentifierSystem(models.Model):
    """An identifier system whose values identify at most one resource among `resource_types`.

    Storage refuses (409) a write that would give a second resource such an identifier. The NPI
    is built in (directory/identifiers.py) and needs no row.
    """

    system = models.CharField(max_length=255, unique=True, help_text="The system URI.")
    resource_types = models.CharField(
        max_length=255,
        help_text="Comma-separated resource types among which one value identifies one resource, "
        "e.g. Practitioner,Organization.",
    )
    note = models.CharField(max_length=255, blank=True, help_text="Why the values are unique.")

    class Meta:
        ordering = ["system"]
        verbose_name = "unique identifier system"

    def __str__(self) -> str:
        return self.system

    def types(self) -> tuple[str, ...]:
        return tuple(t.strip() for t in self.resource_types.split(",") if t.strip())

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from .identifiers import NPI_SYSTEM
        from .registry import RESOURCE_TYPES

        if self.system == NPI_SYSTEM:
            raise ValidationError({"system": "The NPI is always unique; it needs no entry."})
        unknown = [t for t in self.types() if t not in RESOURCE_TYPES]
        if unknown or not self.types():
            raise ValidationError(
                {"resource_types": f"Name one or more of: {', '.join(sorted(RESOURCE_TYPES))}"}
            )
        self.resource_types = ",".join(dict.fromkeys(self.types()))


class MergeRecord(models.Model):
    """Audit of one merge of duplicate records: who kept which, and what was re-pointed."""

    time = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150)
    resource_type = models.CharField(max_length=40)
    kept_id = models.CharField(max_length=64)
    merged_id = models.CharField(max_length=64)
    rewritten = models.JSONField(default=list, help_text="Resources whose references changed.")

    class Meta:
        ordering = ["-time"]
        verbose_name = "merge record"

    def __str__(self) -> str:
        return f"{self.resource_type}/{self.merged_id} merged into {self.kept_id}"


class VerificationRecord(models.Model):
    """One verification of a record (directory/verification.py): when, by whom, how, result.

    The resource carries the status itself (NDH extension); these rows are the audit of each
    act and the index of the admin's "not verified in N days" filter.
    """

    time = models.DateTimeField(auto_now_add=True)
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="verifications")
    resource_type = models.CharField(max_length=40)
    logical_id = models.CharField(max_length=64)
    version_id = models.PositiveIntegerField(help_text="The version that recorded the status.")
    status = models.CharField(max_length=20)
    process = models.CharField(max_length=20)
    actor = models.CharField(max_length=150)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-time"]
        indexes = [
            # "Verified since" per resource is one index probe: (resource, time >= cutoff).
            models.Index(fields=["resource", "time"], name="verification_resource_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.resource_type}/{self.logical_id} {self.status} by {self.actor}"


from .admin_models import *  # noqa: E402,F403

# The bulk import job table (directory/bulkimport_jobs.py).
from .bulkimport_models import ImportJob  # noqa: E402, F401

# Declared in their own modules (bulk export, custom search parameters); imported so Django
# registers them.
from .export_models import ExportJob  # noqa: E402, F401
from .reindex_models import ReindexJob  # noqa: E402, F401
