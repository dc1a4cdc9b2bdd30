"""Run, resume or start reindex jobs from the command line (see directory/reindex.py).

The API's `$reindex` runs its job in a thread of the worker that took it; when that worker dies
the job stops with its keyset (`last_pk`) committed, and this command finishes it.
"""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from directory import registry, reindex
from directory.statement_timeout import lift_statement_timeout


class Command(BaseCommand):
    help = "Run a reindex job (--job), resume every stalled one (--resume), or start one (--type)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--job", type=int, help="run or resume this job to its end")
        group.add_argument(
            "--resume",
            action="store_true",
            help=f"resume queued or running jobs silent for {reindex.STALE_SECONDS}s or more",
        )
        group.add_argument(
            "--type", dest="resource_type", help="start a new job over one type ('*' for all)"
        )

    def handle(
        self,
        *args: Any,
        job: int | None = None,
        resume: bool = False,
        resource_type: str | None = None,
        **options: Any,
    ) -> None:
        lift_statement_timeout()  # a whole directory outlasts the per-request statement timeout
        if job is not None:
            if not reindex.ReindexJob.objects.filter(pk=job).exists():
                raise CommandError(f"No reindex job {job}")
            jobs = [job]
        elif resume:
            jobs = [j.pk for j in reindex.stale_jobs()]
        else:
            # The required option group guarantees --type here; "*" means every type.
            rtype = "" if resource_type is None or resource_type == "*" else resource_type
            if rtype and rtype not in registry.RESOURCE_TYPES:
                raise CommandError(f"Unknown resource type {resource_type}")
            jobs = [reindex.start_job(rtype, background=False).pk]
        for job_id in jobs:
            done = reindex.run_job(job_id, sleep=self._wait)
            self.stdout.write(f"{done}: {done.done}/{done.total} resources")
            if done.state != reindex.ReindexJob.DONE:
                raise CommandError(f"{done}: {done.error}")

    def _wait(self, seconds: float) -> None:
        import time

        self.stdout.write(f"waiting {seconds:.0f}s for every worker to load the parameters")
        time.sleep(seconds)
