"""The reindex job table (see directory/reindex.py)."""

from django.db import models


class ReindexJob(models.Model):
    """One re-extraction of index rows, over one type or all of them, resumable by keyset."""

    QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
    STATES = [(s, s) for s in (QUEUED, RUNNING, DONE, FAILED)]

    id = models.BigAutoField(primary_key=True)
    resource_type = models.CharField(max_length=40, blank=True, default="")  # "" = every type
    state = models.CharField(max_length=10, choices=STATES, default=QUEUED)
    created = models.DateTimeField()
    # Scanning starts no earlier: every worker has refreshed its registry by then.
    not_before = models.DateTimeField()
    started = models.DateTimeField(null=True)
    finished = models.DateTimeField(null=True)
    heartbeat = models.DateTimeField(null=True)  # last progress; a stale one means a dead runner
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    last_pk = models.BigIntegerField(default=0)  # keyset: every Resource.pk <= this is reindexed
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        app_label = "directory"
        indexes = [models.Index(fields=["state", "finished"], name="reindex_state_idx")]

    def __str__(self) -> str:
        return f"reindex job {self.id} ({self.resource_type or 'all types'}, {self.state})"
