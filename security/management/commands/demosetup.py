"""Development and demo only: a token issuer, a demo client with a fresh key and token, and curl."""

import secrets
from argparse import ArgumentParser
from io import StringIO
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from security import clients, keys
from security.models import ApiClient, ApiKey
from security.oauth import config as oauth
from security.oauth.registration import certificate_jwks
from security.roles import ADMINISTRATORS, SUPPORT

DEMO_CLIENT = "Demo client"
DEMO_ISSUER = "https://demo-issuer.localhost/"
DEMO_AUDIENCE = "https://localhost/fhir"
DEMO_SCOPES = "system/*.cruds"
DEMO_CLIENT_ID = "demo-client"
# The pipe the printed commands use to pick access_token out of the token response.
JSON_FIELD_READER = (
    ".venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])'"
)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# One staff user per role the web admin is built for; passwords are new on every run.
DEMO_STAFF = {"admin": ADMINISTRATORS, "support": SUPPORT}


class Command(BaseCommand):
    help = "Create the demo token issuer and client, issue a new demo key and token, print curl."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--dir", default="var/jwt", help="where the demo issuer's keys live")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000/fhir")
        parser.add_argument("--admin-url", default="", help="default: beside --base-url")
        parser.add_argument("--curl-tls", default="", help="curl options for the client's TLS")
        parser.add_argument(
            "--client-cert",
            default="",
            help="the demo client's certificate: with OAUTH_SERVER_URL set, the printed commands "
            "get a certificate-bound token from the built-in authorization server",
        )
        parser.add_argument("--client-key", default="", help="the demo client's private key")

    def handle(
        self,
        *args: Any,
        dir: str,
        base_url: str,
        admin_url: str,
        curl_tls: str,
        client_cert: str | None,
        client_key: str | None,
        **options: Any,
    ) -> None:
        if settings.ENVIRONMENT == "prod":
            raise CommandError("demosetup is for development and demonstrations, not production")
        directory = Path(dir)
        key_file = self._issuer(directory)
        client = self._client()
        api_key = self._fresh_key(client)
        token = self._token(key_file)
        staff = {name: self._staff_user(name, group) for name, group in DEMO_STAFF.items()}
        if client_cert and client_key and oauth.enabled():
            self._enable_builtin_tokens(client, client_cert)
            self._print_builtin_usage(base_url, api_key, curl_tls, client_key)
        else:
            self._print_usage(base_url, directory, api_key, token, curl_tls)
        self._print_admin(admin_url or base_url.rsplit("/fhir", 1)[0] + "/admin/", staff)

    def _issuer(self, directory: Path) -> Path:
        key_file = directory / "issuer.key.pem"
        if not key_file.exists():
            directory.mkdir(parents=True, exist_ok=True)
            call_command(
                "makejwtissuer",
                dir=str(directory),
                issuer=DEMO_ISSUER,
                audience=DEMO_AUDIENCE,
                stdout=StringIO(),
            )
        return key_file

    @staticmethod
    def _client() -> ApiClient:
        existing = ApiClient.objects.filter(name=DEMO_CLIENT).first()
        if existing:
            return existing
        return clients.create_client(
            DEMO_CLIENT, organization="Demo", allowed_scopes=DEMO_SCOPES, actor=keys.command_actor()
        )

    @staticmethod
    def _fresh_key(client: ApiClient) -> str:
        # Keys are shown once, so each run retires the old demo keys and shows a new one.
        for old in client.keys.filter(state__in=[ApiKey.ACTIVE, ApiKey.ROTATING]):
            keys.retire_key(old, actor=keys.command_actor(), reason="replaced by demosetup")
        _, plaintext = keys.issue_key(client, actor=keys.command_actor())
        return plaintext

    @staticmethod
    def _staff_user(username: str, group_name: str) -> str:
        user, _ = get_user_model().objects.get_or_create(username=username)
        password = secrets.token_urlsafe(12)
        user.is_staff = True
        user.set_password(password)
        user.save()
        user.groups.set([Group.objects.get(name=group_name)])
        return password

    def _print_admin(self, admin_url: str, staff: dict[str, str]) -> None:
        self.stdout.write(f"Web admin: {admin_url}")
        for username, password in staff.items():
            self.stdout.write(f"  {username} / {password}  ({DEMO_STAFF[username]})")

    @staticmethod
    def _token(key_file: Path) -> str:
        out = StringIO()
        call_command(
            "minttoken",
            key=str(key_file),
            issuer=DEMO_ISSUER,
            audience=DEMO_AUDIENCE,
            sub="demo-client",
            scope=DEMO_SCOPES,
            lifetime=settings.SECURITY_JWT_MAX_LIFETIME_SECONDS,
            stdout=out,
        )
        return out.getvalue().strip()

    def _print_usage(
        self, base_url: str, directory: Path, api_key: str, token: str, curl_tls: str = ""
    ) -> None:
        write = self.stdout.write
        write(f"Demo client: {DEMO_CLIENT} (scopes {DEMO_SCOPES})")
        write("API key (shown once):")
        write(f"  {api_key}")
        write(
            f"Bearer token (valid {settings.SECURITY_JWT_MAX_LIFETIME_SECONDS // 60} minutes; "
            f"a new one: make demo, or manage.py minttoken --key {directory}/issuer.key.pem ...):"
        )
        write(f"  {token}")
        write("Try:")
        query = "PractitionerRole?specialty=207RC0000X&_include=PractitionerRole:practitioner"
        url = f"'{base_url}/{query}'"
        if curl_tls:
            write(f"  curl -s {curl_tls} \\")
            write(f"       {url} \\")
        else:
            write(f"  curl -s {url} \\")
        write("       -H 'Accept: application/fhir+json' \\")
        write(f"       -H 'X-API-Key: {api_key}' \\")
        write(f"       -H 'Authorization: Bearer {token}'")

    @staticmethod
    def _enable_builtin_tokens(client: ApiClient, client_cert: str) -> None:
        """The demo client's certificate key becomes its private_key_jwt key."""
        certificate = clients.load_certificate(Path(client_cert).read_bytes())
        clients.set_oauth_credentials(
            client, DEMO_CLIENT_ID, certificate_jwks(certificate), actor=keys.command_actor()
        )

    def _print_builtin_usage(
        self, base_url: str, api_key: str, curl_tls: str, client_key: str
    ) -> None:
        """Commands that get a token from the built-in server first, then query with it."""
        write = self.stdout.write
        tls = f"{curl_tls} " if curl_tls else ""
        write(f"Demo client: {DEMO_CLIENT} (scopes {DEMO_SCOPES}, client_id {DEMO_CLIENT_ID})")
        write("API key (shown once):")
        write(f"  {api_key}")
        write(
            f"Get a token (valid {oauth.access_token_lifetime() // 60} minutes, bound to the "
            "client certificate) from the built-in authorization server, then query:"
        )
        write(
            f"  ASSERTION=$(.venv/bin/python manage.py clientassertion --client-id {DEMO_CLIENT_ID}"
            f" \\\n       --key {client_key} --token-url {oauth.token_endpoint()})"
        )
        write(f"  TOKEN=$(curl -s {tls}{oauth.token_endpoint()} \\")
        write("       -d grant_type=client_credentials -d scope=system/*.cruds \\")
        write(f"       -d client_assertion_type={ASSERTION_TYPE} \\")
        write('       -d client_assertion="$ASSERTION" \\')
        write(f"       | {JSON_FIELD_READER})")
        query = "PractitionerRole?specialty=207RC0000X&_include=PractitionerRole:practitioner"
        write(f"  curl -s {tls}'{base_url}/{query}' \\")
        write("       -H 'Accept: application/fhir+json' \\")
        write(f"       -H 'X-API-Key: {api_key}' \\")
        write('       -H "Authorization: Bearer $TOKEN"')
