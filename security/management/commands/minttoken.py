"""Sign a bearer JWT with a local private key: for development, tests and demos only."""

from __future__ import annotations

import time
import uuid
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from joserfc import jwt
from joserfc.jwk import Key, import_key

KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}


class Command(BaseCommand):
    help = "Print a signed JWT for SECURITY_JWT_ISSUERS_FILE issuers (not available in prod)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--key", required=True, help="private key PEM file")
        parser.add_argument(
            "--kid", help="key id in the issuer's JWKS (default: the key's RFC 7638 thumbprint)"
        )
        parser.add_argument("--issuer", required=True)
        parser.add_argument("--audience", required=True)
        parser.add_argument("--sub", required=True, help="subject: the calling system")
        parser.add_argument("--scope", default="", help='SMART scopes, e.g. "system/*.read"')
        parser.add_argument(
            "--requested-scope", default="", help='NHS scopes, e.g. "organization/*.read"'
        )
        parser.add_argument("--lifetime", type=int, default=3600, help="seconds")
        parser.add_argument("--alg", choices=sorted(KEY_TYPES), default="ES256")

    def handle(self, *args: Any, **options: Any) -> None:
        # A production token comes from a real authorization server, never from a key on a host.
        if settings.ENVIRONMENT == "prod":
            raise CommandError("minttoken is for dev and test only; it refuses to run in prod")
        if not 0 < options["lifetime"] <= settings.SECURITY_JWT_MAX_LIFETIME_SECONDS:
            raise CommandError(
                "--lifetime must be between 1 and SECURITY_JWT_MAX_LIFETIME_SECONDS "
                f"({settings.SECURITY_JWT_MAX_LIFETIME_SECONDS}), or the token is refused"
            )
        key = self._load_key(options["key"], options["alg"])
        header = {"alg": options["alg"], "kid": options["kid"] or key.thumbprint()}
        token = jwt.encode(header, self._claims(options), key, algorithms=[options["alg"]])
        self.stdout.write(token)

    @staticmethod
    def _load_key(path: str, alg: str) -> Key:
        try:
            # KEY_TYPES holds import_key's own type names; its overloads want a literal.
            key = import_key(Path(path).read_bytes(), KEY_TYPES[alg])  # type: ignore[call-overload]
        except Exception as error:
            raise CommandError(f"{path} is not a readable {KEY_TYPES[alg]} private key") from error
        if not key.is_private:
            raise CommandError(f"{path} holds a public key; a private key is needed to sign")
        return key

    @staticmethod
    def _claims(options: dict[str, Any]) -> dict:
        now = int(time.time())
        claims = {
            "iss": options["issuer"],
            "aud": options["audience"],
            "sub": options["sub"],
            "iat": now,
            "exp": now + options["lifetime"],
            "jti": str(uuid.uuid4()),
        }
        if options["scope"]:
            claims["scope"] = options["scope"]
        if options["requested_scope"]:
            claims["requested_scope"] = options["requested_scope"]
        return claims
