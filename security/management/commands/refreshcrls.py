"""Fetch, check and store every trust anchor's CRL; run on a schedule (cron, systemd timer)."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from security import truststore
from security.crl import refresh_all, stale_anchors
from security.models import TrustCommunity


class Command(BaseCommand):
    help = (
        "Refresh the CRLs of all trust anchors. Exits non-zero if any active community is left "
        "with a missing or expired CRL (its clients are then refused)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--community", metavar="SLUG", help="only this community")

    def handle(self, *args: Any, **options: Any) -> None:
        community = None
        if options["community"]:
            community = TrustCommunity.objects.filter(slug=options["community"]).first()
            if community is None:
                raise CommandError(f"no trust community {options['community']!r}")
        for result in refresh_all(community):
            if result.ok:
                self.stdout.write(f"ok      {result.anchor.subject}")
            else:
                self.stderr.write(f"failed  {result.anchor.subject}: {result.error}")
        # This process may serve requests too (tests, shell): let it see the new CRLs at once.
        truststore.invalidate()
        stale = [a for a in stale_anchors() if community is None or a.community_id == community.pk]
        if stale:
            names = ", ".join(sorted({a.community.slug for a in stale}))
            raise CommandError(f"stale or missing CRL in community: {names}")
