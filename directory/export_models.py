"""The bulk export job table (see directory/export.py)."""

from django.db import models


class ExportJob(models.Model):
    """One FHIR Bulk Data `$export`: its request, its owner, its progress and its files."""

    QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
    STATES = [(s, s) for s in (QUEUED, RUNNING, DONE, FAILED)]

    id = models.BigAutoField(primary_key=True)
    # Names the job in its status and file URLs: random, so a URL cannot be guessed (the owner
    # check stands behind it all the same).
    key = models.CharField(max_length=64, unique=True)
    owner = models.CharField(max_length=200)  # the API's client key (fhirapi/identity.py)
    request_url = models.TextField()
    types = models.JSONField(default=list)  # exported types, in export order
    since = models.DateTimeField(null=True)
    # {type: [[[name, value], ...], ...]}: a type's resources match any one of its queries.
    type_filters = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=STATES, default=QUEUED)
    created = models.DateTimeField()
    started = models.DateTimeField(null=True)
    finished = models.DateTimeField(null=True)
    heartbeat = models.DateTimeField(null=True)  # last sign of life of its runner
    expires = models.DateTimeField()  # the job and its files are deleted after this
    transaction_time = models.DateTimeField(null=True)
    # [{"type": T, "count": n}] for every type written so far, in order.
    output = models.JSONField(default=list)
    done = models.PositiveBigIntegerField(default=0)
    total = models.PositiveBigIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        app_label = "directory"
        indexes = [
            models.Index(fields=["state", "heartbeat"], name="export_state_idx"),
            models.Index(fields=["expires"], name="export_expires_idx"),
            models.Index(fields=["owner", "state"], name="export_owner_idx"),
        ]

    def __str__(self) -> str:
        return f"export job {self.id} ({self.state})"
