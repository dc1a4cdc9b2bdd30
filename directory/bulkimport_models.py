"""The bulk import job table (see directory/bulkimport.py and fhirapi/bulk_import.py)."""

import secrets

from django.db import models


def new_job_id() -> str:
    """An unguessable job id: the status URL names it, and ids must not enumerate other jobs."""
    return secrets.token_hex(16)


class ImportJob(models.Model):
    """One `$import` of NDJSON: its spool file, its owner, its progress and its outcome."""

    QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
    STATES = [(s, s) for s in (QUEUED, RUNNING, DONE, FAILED, CANCELLED)]

    id = models.CharField(max_length=32, primary_key=True, default=new_job_id)
    # The API client that started it (security ApiClient pk, "" in a token-less deployment):
    # only that client may poll, read the error file or cancel.
    owner = models.CharField(max_length=64, blank=True, default="")
    # Types the client may create and update, decided at kick-off; None = every type.
    writable_types = models.JSONField(null=True)
    request_url = models.CharField(max_length=500, blank=True, default="")
    spool_path = models.CharField(max_length=500)
    error_path = models.CharField(max_length=500, blank=True, default="")
    size_bytes = models.BigIntegerField(default=0)
    state = models.CharField(max_length=10, choices=STATES, default=QUEUED)
    cancel_requested = models.BooleanField(default=False)
    created = models.DateTimeField()
    started = models.DateTimeField(null=True)
    finished = models.DateTimeField(null=True)
    heartbeat = models.DateTimeField(null=True)
    lines_total = models.BigIntegerField(default=0)
    lines_done = models.BigIntegerField(default=0)
    counts = models.JSONField(default=dict)  # resources stored per type
    errors = models.BigIntegerField(default=0)  # lines refused
    warnings = models.BigIntegerField(default=0)  # stored lines with dangling references
    failure = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        app_label = "directory"
        indexes = [models.Index(fields=["state", "created"], name="import_state_idx")]

    def __str__(self) -> str:
        return f"import job {self.id} ({self.state})"
