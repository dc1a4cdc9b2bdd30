"""Render deploy/nginx templates for this host, with the trust bundles taken from the database.

The CA and CRL bundles nginx checks client certificates against are written from the same trust
anchors and CRLs the app verifies with, so the two gates never disagree. Rerun it (and
`nginx -s reload`) after `refreshcrls`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from security.models import RevocationList, TrustAnchor
from security.trust.crls import parse_crl

TEMPLATES = Path(settings.BASE_DIR) / "deploy" / "nginx"
PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")


class Command(BaseCommand):
    help = (
        "Write nginx.conf, fhir-directory.conf, fhir-directory-admin.conf and the client CA and"
        " CRL bundles into --out."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", required=True, help="directory for the rendered files")
        parser.add_argument("--port", default="443")
        parser.add_argument("--server-name", default="localhost")
        parser.add_argument(
            "--upstream",
            default="unix:/run/fhir-directory/gunicorn.sock",
            help="gunicorn's socket (unix:/path), or host:port",
        )
        parser.add_argument(
            "--admin-listen", default="127.0.0.1:8444", help="address:port of the admin server"
        )
        parser.add_argument("--tls-cert", required=True, help="server certificate chain, PEM")
        parser.add_argument("--tls-key", required=True, help="server private key, PEM")

    def handle(
        self,
        *args: Any,
        out: str,
        port: str,
        server_name: str,
        upstream: str,
        tls_cert: str,
        tls_key: str,
        **options: Any,
    ) -> None:
        admin_listen = options["admin_listen"]
        directory = Path(out).resolve()
        for sub in ("logs", "temp"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        values = {
            "LISTEN_PORT": port,
            "SERVER_NAME": server_name,
            "UPSTREAM": upstream,
            "TLS_CERT": str(Path(tls_cert).resolve()),
            "TLS_KEY": str(Path(tls_key).resolve()),
            "CLIENT_CA_BUNDLE": str(_write(directory / "client-ca.pem", _anchor_bundle())),
            "CRL_BUNDLE": str(_write(directory / "crls.pem", _crl_bundle())),
            "LOG_DIR": str(directory / "logs"),
            "STATIC_ROOT": str(Path(settings.STATIC_ROOT).resolve()),
            "PID_FILE": str(directory / "nginx.pid"),
            "TEMP_DIR": str(directory / "temp"),
            "SITE_CONF": str(directory / "fhir-directory.conf"),
            "ADMIN_LISTEN": admin_listen,
            "ADMIN_SITE_CONF": str(directory / "fhir-directory-admin.conf"),
        }
        for name in ("fhir-directory.conf", "fhir-directory-admin.conf", "nginx.conf"):
            _write(directory / name, _render(TEMPLATES / name, values))
        self.stdout.write(
            f"nginx configuration in {directory}; start with: nginx -c {directory}/nginx.conf"
        )


def _render(template: Path, values: dict[str, str]) -> str:
    text = template.read_text()
    missing = sorted(set(PLACEHOLDER.findall(text)) - values.keys())
    if missing:
        raise CommandError(f"{template.name}: no value for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def _anchor_bundle() -> str:
    anchors = TrustAnchor.objects.filter(community__active=True).order_by("community", "kind")
    if not anchors:
        raise CommandError("No trust anchor is registered: nginx would accept no client at all")
    return "".join(anchor.certificate_pem.strip() + "\n" for anchor in anchors)


def _crl_bundle() -> str:
    crls = RevocationList.objects.filter(
        issuer__community__active=True, crl_der__isnull=False
    ).select_related("issuer")
    missing = TrustAnchor.objects.filter(community__active=True).exclude(crl__in=crls)
    if missing.exists():
        # ssl_crl with a CA missing from it makes nginx refuse every certificate of that CA.
        names = ", ".join(anchor.subject for anchor in missing[:3])
        raise CommandError(f"No CRL stored for {names}; run refreshcrls first")
    return "".join(
        # crl_der__isnull=False above: `or b""` only tells the type checker so.
        parse_crl(bytes(crl.crl_der or b"")).public_bytes(Encoding.PEM).decode()
        for crl in crls
    )


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
