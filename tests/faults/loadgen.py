"""The load generator of the load and fault tests: one process per API client, one thread per
kept-alive mutual-TLS connection, a weighted mix of reads, searches, creates and updates.

Run as `python -m tests.faults.loadgen` with a JSON spec on stdin: the credentials travel there,
not in argv, which any local user can read. Standard library only, so a process starts in a
blink and competes little with the server for the cores. It runs for `seconds`, or until the
file `stop_file` appears. Every answer becomes one JSON line in the spec's `out` file: kind, when
it was sent (time.monotonic(), one clock for every process on the machine), latency, status, and
for a refusal its Retry-After and OperationOutcome code.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import ssl
import sys
import threading
import time
from urllib.parse import quote

JSON = "application/fhir+json"
KINDS = ("read", "search", "create", "update")
_VERSION = re.compile(r'W/"(\d+)"')
TIMEOUT = 30  # seconds; nginx and gunicorn answer or give up well before


def tls_context(spec: dict) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=spec["server_ca"])
    context.load_cert_chain(spec["cert"], spec["key"])
    return context


class Connection:
    """One client connection: HTTP/1.1 kept alive, reopened only when the server closes it."""

    def __init__(self, spec: dict, context: ssl.SSLContext):
        self.spec = spec
        self.http = http.client.HTTPSConnection(
            "localhost", spec["port"], context=context, timeout=TIMEOUT
        )
        self.headers = {
            "Accept": JSON,
            "X-API-Key": spec["api_key"],
            "Authorization": f"Bearer {spec['token']}",
        }

    def send(self, method: str, path: str, body: dict | None = None, **extra: str):
        """(status, headers, body bytes); raises OSError / HTTPException when not answered."""
        headers = {**self.headers, **extra}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = JSON
        try:
            self.http.request(method, path, body=data, headers=headers)
            response = self.http.getresponse()
            return response.status, response.headers, response.read()
        except (OSError, http.client.HTTPException):
            self.http.close()  # the next request opens a fresh connection
            raise


class Client:
    """One thread's loop: pick a kind, send it, record the answer, honour Retry-After."""

    def __init__(self, spec: dict, context: ssl.SSLContext, seed: int):
        self.spec = spec
        self.connection = Connection(spec, context)
        self.chance = random.Random(seed)  # a workload mix, not a secret
        self.own: dict[str, int] = {}  # resources this thread created: id -> current version
        self.records: list[dict] = []

    def run(self, deadline: float) -> None:
        kinds = list(self.spec["mix"])
        weights = [self.spec["mix"][kind] for kind in kinds]
        stop = self.spec.get("stop_file") or ""
        while time.monotonic() < deadline and not (stop and os.path.exists(stop)):
            kind = self.chance.choices(kinds, weights)[0]
            record = self.one(kind)
            self.records.append(record)
            if record["status"] == 429:
                # A well-behaved client waits as told (capped so the run still ends on time).
                time.sleep(min(float(record["retry_after"] or 1), 5))
            elif record["status"] == 0 or record["status"] >= 500:
                time.sleep(0.05)

    def one(self, kind: str) -> dict:
        if kind == "update" and not self.own:
            kind = "create"  # nothing of its own to update yet
        method, path, body, extra = getattr(self, f"_{kind}")()
        sent = time.monotonic()
        record = {"kind": kind, "sent": sent, "status": 0}
        try:
            status, headers, payload = self.connection.send(method, path, body, **extra)
        except (OSError, http.client.HTTPException) as error:
            record.update(ms=(time.monotonic() - sent) * 1000, error=type(error).__name__)
            return record
        record.update(ms=(time.monotonic() - sent) * 1000, status=status)
        if status in (200, 201) and kind in ("create", "update"):
            self._remember(headers, path)
        elif status >= 300:
            record.update(retry_after=headers.get("Retry-After"), issue=_issue_code(payload))
        return record

    def _read(self):
        logical_id = self.chance.choice(self.spec["read_ids"])
        return "GET", f"/fhir/Organization/{logical_id}", None, {}

    def _search(self):
        if self.chance.random() < 0.5:
            name = quote(self.chance.choice(self.spec["names"]))
            return "GET", f"/fhir/Organization?name={name}&_count=10", None, {}
        identifier = quote(self.chance.choice(self.spec["identifiers"]), safe="")
        return "GET", f"/fhir/Organization?identifier={identifier}", None, {}

    def _create(self):
        body = {"resourceType": "Organization", "name": self._name(), "active": True}
        return "POST", "/fhir/Organization", body, {}

    def _update(self):
        logical_id = self.chance.choice(list(self.own))
        body = {"resourceType": "Organization", "id": logical_id, "name": self._name()}
        extra = {"If-Match": f'W/"{self.own[logical_id]}"'}
        return "PUT", f"/fhir/Organization/{logical_id}", body, extra

    def _name(self) -> str:
        return f"Load {self.spec['name']} {self.chance.getrandbits(48):012x}"

    def _remember(self, headers, path: str) -> None:
        """The version a create or update made, so the next update's If-Match is current."""
        location = headers.get("Location") or path  # an update's path names its resource
        logical_id = location.split("/_history/")[0].rsplit("/", 1)[-1]
        found = _VERSION.fullmatch(headers.get("ETag") or "")
        if logical_id and found:
            self.own[logical_id] = int(found.group(1))


def _issue_code(payload: bytes) -> str | None:
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return None
    return body["issue"][0]["code"]


def run(spec: dict) -> None:
    context = tls_context(spec)
    deadline = time.monotonic() + spec["seconds"]
    clients = [Client(spec, context, spec["seed"] + n) for n in range(spec["connections"])]
    threads = [threading.Thread(target=c.run, args=(deadline,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with open(spec["out"], "w") as out:
        for client in clients:
            for record in client.records:
                out.write(json.dumps({"client": spec["name"], **record}) + "\n")


if __name__ == "__main__":
    run(json.load(sys.stdin))
