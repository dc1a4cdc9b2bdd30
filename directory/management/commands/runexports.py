"""Run Bulk Data export jobs outside the web workers (systemd, Kubernetes).

With BULK_EXPORT_RUN_IN_THREAD off, kick-offs only queue jobs and this command runs them. Either
way it restarts jobs whose runner died (a worker killed mid-export): such a job starts over from
the beginning, with a new transactionTime (see directory/export.py).
"""

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from directory import export
from directory.statement_timeout import lift_statement_timeout


class Command(BaseCommand):
    help = "Run queued and stalled export jobs; with --loop, keep polling for new ones."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--loop", action="store_true", help="keep running, polling for jobs")
        parser.add_argument(
            "--interval", type=float, default=2.0, help="seconds between polls with --loop"
        )

    def handle(self, *args: Any, loop: bool = False, interval: float = 2.0, **options: Any) -> None:
        lift_statement_timeout()  # a whole type outlasts the per-request statement timeout
        while True:
            for job_id in export.runnable_jobs():
                self._run(job_id)
            export.purge_expired(batch=1000)
            if not loop:
                return
            time.sleep(interval)

    def _run(self, job_id: int) -> None:
        job = export.run_job(job_id)
        if job is None:
            self.stdout.write(f"export job {job_id}: cancelled or purged while it ran")
        else:
            self.stdout.write(f"{job}: {job.done} of {job.total} resources")
