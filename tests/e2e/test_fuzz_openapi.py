"""Property-based fuzzing of a live server from its own OpenAPI document (schemathesis).

A real gunicorn in PROD mode, a registered client's certificate (as the trusted proxy passes it),
API key and bearer token, a little linked sample data, then `st run` over every operation the
document describes: its examples, its coverage cases (boundaries, missing and malformed values)
and generated positive and negative requests. Zero 5xx; every error an OperationOutcome as
application/fhir+json with no-store (tests/e2e/fuzz_checks.py).

Bounded for CI, with deterministic generation so a run repeats itself; set FUZZ_MAX_EXAMPLES (and
FUZZ_SEED for another repeatable run) to fuzz longer or differently on a workstation.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from directory import storage
from tests.servers import ROOT, all_logs, gunicorn, wait_until_serving

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MAX_EXAMPLES = os.environ.get("FUZZ_MAX_EXAMPLES", "5")
# Per run, not per request: a hung worker must fail the test, not the CI job. The API now has
# ten types and their Plan-Net/NDH parameters: the coverage phase alone takes minutes on 2 cores.
RUN_TIMEOUT_SECONDS = 1200

# Linked resources with the id the document's examples use, so reads, vreads, references,
# _include and _revinclude find data.
SAMPLE = [
    {
        "resourceType": "Endpoint",
        "status": "active",
        "name": "Directory endpoint",
        "connectionType": {
            "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
            "code": "hl7-fhir-rest",
        },
        "payloadType": [{"text": "any"}],
        "address": "https://fhir.example.org/r4",
    },
    {
        "resourceType": "Organization",
        "active": True,
        "name": "Harbor Clinic",
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
        "endpoint": [{"reference": "Endpoint/example"}],
    },
    {
        "resourceType": "Practitioner",
        "active": True,
        "name": [{"family": "Smith", "given": ["Ada"]}],
    },
    {
        "resourceType": "Location",
        "status": "active",
        "name": "Harbor Clinic Main Site",
        "managingOrganization": {"reference": "Organization/example"},
        "address": {"city": "Cambridge", "state": "MA", "postalCode": "02139"},
    },
    {
        "resourceType": "PractitionerRole",
        "active": True,
        "practitioner": {"reference": "Practitioner/example"},
        "organization": {"reference": "Organization/example"},
        "location": [{"reference": "Location/example"}],
        "endpoint": [{"reference": "Endpoint/example"}],
    },
]


def load_sample_data() -> None:
    for resource in SAMPLE:
        storage.update(resource["resourceType"], "example", {**resource, "id": "example"})
    # A second version, for history and vread.
    renamed = {**SAMPLE[1], "id": "example", "name": "Harbor Clinic (renamed)"}
    storage.update("Organization", "example", renamed)


def generation_options() -> list[str]:
    """Deterministic by default, so CI repeats itself; FUZZ_SEED picks another repeatable run."""
    seed = os.environ.get("FUZZ_SEED")
    if seed:
        return [f"--seed={seed}", "--generation-database=none"]
    return ["--generation-deterministic"]


def schemathesis_command(url: str, headers: dict[str, str], report: Path) -> list[str]:
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{url}/fhir/openapi.json",
        "--phases=examples,coverage,fuzzing",
        "--checks=not_a_server_error,error_is_operation_outcome",
        f"--max-examples={MAX_EXAMPLES}",
        *generation_options(),
        # Credentials are fixed below; fuzzed ones would only test the key check's refusals.
        "--generation-with-security-parameters=false",
        "--workers=1",
        "--request-timeout=30",
        "--no-color",
        "--report=junit",
        f"--report-junit-path={report}",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    return command


def test_fuzzing_finds_no_server_error(production, tmp_path, credentials, token_issuer):
    load_sample_data()
    # The fixture's token lives 600 s; a slow run outlasts it and then fuzzes only the 401 path.
    # This one outlives the run's own timeout, and the test server accepts that lifetime.
    lifetime = RUN_TIMEOUT_SECONDS + 300
    headers = credentials.http | {"Authorization": f"Bearer {token_issuer.mint(lifetime=lifetime)}"}
    # schemathesis speaks TCP, not gunicorn's unix socket, so the server runs in the `test`
    # environment (certificates still required and re-verified), trusting only loopback, which
    # stands in for nginx here; `prod` refuses a loopback proxy (security.E010). Rate limits off:
    # the fuzzer would otherwise spend most of its requests on 429s.
    server_env = production | {
        "ENVIRONMENT": "test",
        "SECURITY_TRUSTED_PROXIES": "127.0.0.1/32",
        "RATE_LIMIT_PER_MINUTE": "0",
        "RATE_LIMIT_CONCURRENT": "0",
        # Fuzzed kick-offs write their files (exports) and spool their uploads (imports) here.
        "BULK_EXPORT_DIR": str(tmp_path / "exports"),
        "FHIR_IMPORT_SPOOL_DIR": str(tmp_path / "import"),
        "SECURITY_JWT_MAX_LIFETIME_SECONDS": str(lifetime),
    }
    env = server_env | {"SCHEMATHESIS_HOOKS": "tests.e2e.fuzz_checks", "PYTHONPATH": str(ROOT)}
    with gunicorn(server_env, tmp_path) as (url, process):
        wait_until_serving(url, process)
        command = schemathesis_command(url, headers, tmp_path / "junit.xml")
        # In tmp_path: schemathesis keeps failures for `st replay` under ./.schemathesis.
        run = subprocess.run(  # noqa: S603 - fixed command, test only
            command,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
            check=False,
        )
        assert process.poll() is None, "gunicorn died during the run"
    output = run.stdout + run.stderr
    (tmp_path / "schemathesis.out").write_text(output)
    assert run.returncode == 0, output[-20_000:]
    assert "operations" in output.lower() or "passed" in output.lower(), output[-5000:]
    # The run must have reached the handlers, not stopped at a check: a run refused wholesale
    # (a proxy or credential mistake) would pass every check above while testing nothing.
    served = re.findall(r'" 2\d\d ', (tmp_path / "access.log").read_text())
    assert len(served) >= 200, f"only {len(served)} requests were served"
    logs = all_logs(tmp_path)
    for secret in (credentials.api_key, credentials.token, headers["Authorization"][7:]):
        assert secret not in output
        assert secret not in logs
