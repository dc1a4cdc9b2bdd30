"""A small FHIR client over real HTTP for the fault and concurrency tests."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import requests

JSON = "application/fhir+json"
_VERSION = re.compile(r'W/"(\d+)"')
IDENTIFIER_SYSTEM = "urn:example:fault-tests"


def organization(name: str, identifier: str | None = None, logical_id: str | None = None) -> dict:
    body: dict = {"resourceType": "Organization", "name": name}
    if identifier is not None:
        body["identifier"] = [{"system": IDENTIFIER_SYSTEM, "value": identifier}]
    if logical_id is not None:
        body["id"] = logical_id
    return body


def marker() -> str:
    """A unique name, so a stored version can be traced to the one request that sent it."""
    return f"w-{uuid.uuid4().hex}"


def version_of(response: requests.Response) -> int:
    return int(_VERSION.fullmatch(response.headers["ETag"]).group(1))


def id_of(response: requests.Response) -> str:
    """The logical id of a created or matched resource, from its Location header."""
    return response.headers["Location"].split("/_history/")[0].rsplit("/", 1)[1]


@dataclass(frozen=True)
class FhirClient:
    base: str
    credentials: dict
    timeout: float = 30

    def headers(self, **extra: str) -> dict:
        return {**self.credentials, "Accept": JSON, "Content-Type": JSON, **extra}

    def create(self, body: dict, if_none_exist: str | None = None) -> requests.Response:
        extra = {"If-None-Exist": if_none_exist} if if_none_exist else {}
        return requests.post(
            f"{self.base}/Organization",
            json=body,
            headers=self.headers(**extra),
            timeout=self.timeout,
        )

    def update(self, body: dict, if_match: int | None = None) -> requests.Response:
        extra = {"If-Match": f'W/"{if_match}"'} if if_match is not None else {}
        return requests.put(
            f"{self.base}/Organization/{body['id']}",
            json=body,
            headers=self.headers(**extra),
            timeout=self.timeout,
        )

    def delete(self, logical_id: str) -> requests.Response:
        return requests.delete(
            f"{self.base}/Organization/{logical_id}", headers=self.headers(), timeout=self.timeout
        )

    def read(self, logical_id: str) -> requests.Response:
        return requests.get(
            f"{self.base}/Organization/{logical_id}", headers=self.headers(), timeout=self.timeout
        )
