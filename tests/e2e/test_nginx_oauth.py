"""The built-in authorization server end to end: real nginx (deploy/nginx/) in front of a real
PROD gunicorn. A client holding only its community certificate and key registers by UDAP, gets
a certificate-bound token and queries the directory, with the commands the README shows; the
token is refused when another client's certificate presents it."""

from __future__ import annotations

import json
from io import StringIO

import pytest
import requests
from django.core.management import call_command

from security.models import ApiClient, RequestAudit
from tests.e2e.nginx_support import nginx, require_nginx, write_client, write_tls_files
from tests.factories import OrganizationFactory
from tests.security.pki import make_leaf
from tests.servers import gunicorn, unix_socket, wait_until_serving

pytestmark = pytest.mark.e2e

URI = "https://apps.example.org/directory-sync"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JSON = "application/fhir+json"


@pytest.fixture(scope="module", autouse=True)
def _nginx_installed():
    require_nginx()


@pytest.fixture
def stack(production, credentials, pki, tmp_path, settings):
    """nginx first, on a known port, so the app can be told its public URL before it starts."""
    tls = write_tls_files(pki, tmp_path)
    (tmp_path / "gunicorn").mkdir()
    with unix_socket() as sock, nginx(tls, f"unix:{sock}", tmp_path / "nginx") as edge:
        settings.OAUTH_SERVER_URL = edge.url  # what the client-side commands below sign for
        env = {**production, "OAUTH_SERVER_URL": edge.url}
        with gunicorn(env, tmp_path / "gunicorn", f"unix:{sock}") as (url, process):
            wait_until_serving(url, process)
            yield edge, tls


@pytest.fixture
def sync_client(pki, tmp_path):
    """A community A certificate for software URI `URI`, and its key, as files."""
    leaf = make_leaf(pki.a.intermediate, "Directory Sync", ("sync.example.org",), uris=(URI,))
    return write_client(leaf, tmp_path, "sync")


def _command(command: str, **options) -> str:
    out = StringIO()
    call_command(command, stdout=out, **options)
    return out.getvalue().strip()


def _post(edge, tls, path, cert, **kwargs):
    return requests.post(
        f"{edge.url}{path}", cert=cert, verify=str(tls.server_ca), timeout=20, **kwargs
    )


def _get_token(edge, tls, cert, client_id: str, kid: str) -> requests.Response:
    assertion = _command("clientassertion", client_id=client_id, key=cert[1], kid=kid)
    form = {
        "grant_type": "client_credentials",
        "scope": "system/*.rs",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    return _post(edge, tls, "/oauth/token", cert, data=form)


@pytest.mark.django_db(transaction=True)
def test_register_token_and_query_through_nginx(stack, sync_client, tmp_path):
    OrganizationFactory.create(name="Harbor Clinic")
    edge, tls = stack
    cert, key = sync_client
    body = _command(
        "softwarestatement", cert=cert, key=key, uri=URI, name="Directory Sync", scope="system/*.rs"
    )
    registered = _post(
        edge, tls, "/oauth/register", sync_client,
        data=body, headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert registered.status_code == 201, registered.text
    answer = registered.json()
    kid = answer["jwks"]["keys"][0]["kid"]
    token = _get_token(edge, tls, sync_client, answer["client_id"], kid)
    assert token.status_code == 200, token.text
    assert token.json()["token_type"] == "bearer"
    headers = {
        "Accept": JSON,
        "X-API-Key": answer["api_key"],
        "Authorization": f"Bearer {token.json()['access_token']}",
    }
    found = requests.get(
        f"{edge.url}/fhir/Organization?name=harbor",
        cert=sync_client, verify=str(tls.server_ca), headers=headers, timeout=20,
    )  # fmt: skip
    assert found.status_code == 200, found.text
    assert found.json()["total"] == 1
    client = ApiClient.objects.get(oauth_client_id=answer["client_id"])
    outcomes = list(
        RequestAudit.objects.filter(client=client).order_by("time").values_list("path", "outcome")
    )
    assert outcomes == [
        ("/oauth/register", "ok"),
        ("/oauth/token", "ok"),
        ("/fhir/Organization", "ok"),
    ]


@pytest.mark.django_db(transaction=True)
def test_bound_token_from_another_certificate_is_refused_through_nginx(
    stack, sync_client, pki, tmp_path
):
    edge, tls = stack
    cert, key = sync_client
    body = _command("softwarestatement", cert=cert, key=key, uri=URI, name="Directory Sync")
    answer = _post(
        edge, tls, "/oauth/register", sync_client,
        data=body, headers={"Content-Type": "application/json"},
    ).json()  # fmt: skip
    kid = answer["jwks"]["keys"][0]["kid"]
    token = _get_token(edge, tls, sync_client, answer["client_id"], kid).json()["access_token"]
    # Client A (registered by the credentials fixture) presents the stolen token.
    other = write_client(pki.valid, tmp_path, "client-a")
    headers = {"Accept": JSON, "Authorization": f"Bearer {token}", "X-API-Key": answer["api_key"]}
    stolen = requests.get(
        f"{edge.url}/fhir/Organization",
        cert=other, verify=str(tls.server_ca), headers=headers, timeout=20,
    )  # fmt: skip
    assert stolen.status_code == 401
    assert json.loads(stolen.text)["resourceType"] == "OperationOutcome"
