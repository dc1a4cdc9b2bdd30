"""The whole security chain in a real gunicorn started in PROD mode on its unix socket, the only
peer it trusts (nginx in a deployment, this test here).

Only a registered client's valid certificate, with its own key and a token carrying the right
scope, gets data; every other combination is refused with its own status and audit reason, and
no key or token reaches any log.
"""

from __future__ import annotations

import pytest

from security import clients, keys
from security.models import RequestAudit, TrustAnchor
from tests.credentials import ALL_SCOPES
from tests.factories import OrganizationFactory, PractitionerFactory
from tests.security.pki import http_headers
from tests.security.trust import store_crl
from tests.servers import all_logs, gunicorn, http, unix_socket, wait_until_serving

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

JSON = "application/fhir+json"


def _get(url, path, **headers):
    return http().get(f"{url}/fhir/{path}", headers={"Accept": JSON, **headers}, timeout=10)


def _refused(response, status, reason_issue_code):
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == reason_issue_code
    assert response.headers["Cache-Control"] == "no-store"


def test_only_full_valid_credentials_get_data(production, tmp_path, credentials, pki, token_issuer):
    OrganizationFactory.create(name="Harbor Clinic")
    PractitionerFactory.create()
    other = clients.create_client("Other client", allowed_scopes=ALL_SCOPES, actor="tests")
    _, other_key = keys.issue_key(other, actor="tests")
    _, own_key = keys.issue_key(
        clients.ApiClient.objects.get(name=credentials.client_name), actor="tests"
    )
    good = credentials.http | {"X-API-Key": own_key}
    read_orgs_only = token_issuer.mint(scope="system/Organization.rs")

    with unix_socket() as sock, gunicorn(production, tmp_path, f"unix:{sock}") as (url, process):
        wait_until_serving(url, process)
        ok = _get(url, "Organization?name=harbor", **good)
        assert ok.status_code == 200, ok.text
        assert ok.json()["total"] == 1
        assert ok.headers["Cache-Control"] == "no-store"

        without = {k: v for k, v in good.items() if not k.startswith("X-SSL")}
        _refused(_get(url, "Organization", **without), 401, "login")
        for leaf in (pki.unknown_leaf, pki.expired, pki.not_yet_valid, pki.revoked, pki.wrong_eku):
            _refused(_get(url, "Organization", **(good | http_headers(leaf))), 403, "security")
        # Another client's live key is answered like an unknown one (no confirming stolen keys).
        _refused(_get(url, "Organization", **(good | {"X-API-Key": other_key})), 401, "login")
        _refused(_get(url, "Organization", **(good | {"X-API-Key": "fdk_nope"})), 401, "login")
        no_token = {k: v for k, v in good.items() if k != "Authorization"}
        _refused(_get(url, "Organization", **no_token), 401, "login")

        narrow = good | {"Authorization": f"Bearer {read_orgs_only}"}
        assert _get(url, "Organization", **narrow).status_code == 200
        _refused(_get(url, "Practitioner", **narrow), 403, "forbidden")
        created = http().post(
            f"{url}/fhir/Organization",
            json={"resourceType": "Organization", "name": "Not allowed"},
            headers={**narrow, "Content-Type": JSON},
            timeout=10,
        )
        _refused(created, 403, "forbidden")

        # A CRL past its next update that cannot be refreshed: fail closed with 503.
        intermediate = TrustAnchor.objects.get(subject=pki.a.intermediate.subject)
        store_crl(intermediate, pki.a.stale_intermediate_crl)
        _refused(_get(url, "Organization", **good), 503, "transient")

    outcomes = list(RequestAudit.objects.order_by("id").values_list("outcome", flat=True))
    assert outcomes[0] == "ok"
    for reason in (
        "cert-missing",
        "cert-untrusted",
        "cert-expired",
        "cert-not-yet-valid",
        "cert-revoked",
        "cert-wrong-usage",
        "key-wrong-client",
        "key-invalid",
        "token-missing",
        "scope-missing",
        "crl-unavailable",
    ):
        assert reason in outcomes
    logs = all_logs(tmp_path)
    for secret in (own_key, other_key, credentials.api_key, credentials.token, read_orgs_only):
        assert secret not in logs


def test_forged_certificate_header_from_an_untrusted_address_is_refused(
    production, tmp_path, credentials
):
    untrusted = production | {"SECURITY_TRUSTED_PROXIES": "192.0.2.10/32"}
    with gunicorn(untrusted, tmp_path) as (url, process):
        wait_until_serving(url, process)
        _refused(_get(url, "Organization", **credentials.http), 403, "security")
    assert list(RequestAudit.objects.values_list("outcome", flat=True)) == ["proxy-untrusted"]
