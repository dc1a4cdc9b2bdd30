"""Create a local JWT issuer for dev and demos: an ES256 key pair, its JWKS, the issuers file.

Writes into --dir: `<name>.key.pem` (the private key, mode 0600), `<name>.jwks.json` (the
public key set) and `issuers.json`, merging this issuer into an existing one so several issuers
can share it. Point settings.SECURITY_JWT_ISSUERS_FILE at issuers.json.
"""

from __future__ import annotations

import json
import os
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from joserfc.jwk import ECKey, KeySet

ISSUERS_FILE = "issuers.json"


class Command(BaseCommand):
    help = "Generate an ES256 issuer key pair, JWKS and issuers file (not available in prod)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--dir", required=True, help="directory to write the files into")
        parser.add_argument("--issuer", required=True, help="the iss value tokens will carry")
        parser.add_argument("--audience", required=True, help="the aud value tokens must carry")
        parser.add_argument("--name", default="issuer", help="file name stem for the key files")

    def handle(self, *args: Any, **options: Any) -> None:
        # Production issuers are real authorization servers; their signing keys never live here.
        if settings.ENVIRONMENT == "prod":
            raise CommandError("makejwtissuer is for dev and test only; it refuses to run in prod")
        directory = Path(options["dir"])
        directory.mkdir(parents=True, exist_ok=True)
        name = options["name"]
        key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"}, private=True)
        key.ensure_kid()
        key_path = directory / f"{name}.key.pem"
        jwks_path = directory / f"{name}.jwks.json"
        _write_private(key_path, key.as_pem(private=True))
        jwks_path.write_text(json.dumps(KeySet([key]).as_dict(private=False), indent=2) + "\n")
        issuers_path = _merge_issuer(directory, options["issuer"], options["audience"], jwks_path)
        self.stdout.write(f"kid:          {key.kid}\n")
        self.stdout.write(f"private key:  {key_path}\n")
        self.stdout.write(f"JWKS:         {jwks_path}\n")
        self.stdout.write(f"issuers file: {issuers_path}  (SECURITY_JWT_ISSUERS_FILE)\n")


def _write_private(path: Path, pem: bytes) -> None:
    """Create the key file owner-only from the start; refuse to overwrite an existing key."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CommandError(f"{path} exists; choose another --name or --dir") from None
    with os.fdopen(fd, "wb") as file:
        file.write(pem)


def _merge_issuer(directory: Path, issuer: str, audience: str, jwks_path: Path) -> Path:
    path = directory / ISSUERS_FILE
    entries = json.loads(path.read_text()) if path.exists() else []
    entries = [entry for entry in entries if entry.get("issuer") != issuer]
    # Relative to the issuers file, so the directory can be moved as a whole.
    entries.append({"issuer": issuer, "audience": audience, "jwks_file": jwks_path.name})
    path.write_text(json.dumps(entries, indent=2) + "\n")
    return path
