"""Deliver subscription notifications: handshakes, events, heartbeats (subscriptions/delivery.py).

Runs as a long-lived worker (deploy/systemd/fhir-directory-subscriptions.service,
deploy/k8s/deployment-subscriptions.yaml); `--once` makes one pass and exits (tests, cron).
Several workers may run at once: each subscription is leased to one of them at a time.
"""

from __future__ import annotations

import signal
import time
from argparse import ArgumentParser
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from subscriptions.delivery import run_pass


class Command(BaseCommand):
    help = "Send subscription handshakes, event notifications and heartbeats."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--once", action="store_true", help="one pass, then exit")
        parser.add_argument(
            "--interval", type=float, default=1.0, help="seconds between passes (default 1)"
        )

    def handle(self, *args: Any, once: bool = False, interval: float = 1.0, **options: Any) -> None:
        stopping = {"now": False}

        def stop(signum: int, frame: FrameType | None) -> None:
            stopping["now"] = True  # finish the pass under way, then exit

        if not once:
            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
        while True:
            stats = run_pass()
            if once:
                self.stdout.write(
                    f"handshakes={stats.handshakes} notifications={stats.notifications} "
                    f"events={stats.events} heartbeats={stats.heartbeats} "
                    f"failures={stats.failures} stopped={len(stats.stopped)}"
                )
                return
            if stopping["now"]:
                return
            close_old_connections()  # a restarted database is reconnected at the next pass
            time.sleep(max(interval, 0.05))
