"""The Plan-Net IG as test data, one copy for every test.

The package's 49 example resources and 55 SearchParameters are vendored, unchanged, in
`tests/data/plan-net/` (source and licence in its README: CC0-1.0, as the package's own
`package.json` states). The rest of the package (profiles, value sets, code systems) is read from
its .tgz outside the repository (see issue 9): `FHIR_PACKAGES_DIR` names the folder holding it,
by default `../shared/fhir-packages` beside the checkout; tests that need it skip, saying why,
when it is absent.

Each call returns fresh copies, so a test may change what it gets.
"""

from __future__ import annotations

import copy
import json
import os
import tarfile
from functools import cache
from pathlib import Path

import pytest

PLAN_NET_TGZ = "hl7.fhir.us.davinci-pdex-plan-net-1.2.0.tgz"
REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "plan-net"


@cache
def _read_all(folder: str) -> tuple[dict, ...]:
    return tuple(json.loads(p.read_text()) for p in sorted((DATA / folder).glob("*.json")))


def examples() -> list[dict]:
    """The package's 49 example resources, in file name order (type, then id)."""
    return copy.deepcopy(list(_read_all("examples")))


def search_parameters() -> list[dict]:
    """The package's 55 SearchParameter resources, in file name order."""
    return copy.deepcopy(list(_read_all("search-parameters")))


def package_path() -> Path:
    folder = os.environ.get("FHIR_PACKAGES_DIR") or REPO.parent / "shared" / "fhir-packages"
    return Path(folder) / PLAN_NET_TGZ


@cache
def _members() -> dict[str, dict]:
    path = package_path()
    if not path.exists():
        pytest.skip(f"Plan-Net package not found at {path} (set FHIR_PACKAGES_DIR)")
    found = {}
    with tarfile.open(path) as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.endswith(".json"):
                found[member.name] = json.load(archive.extractfile(member))
    return found


def package_resources() -> list[dict]:
    """Every definition resource of the package (profiles, value sets, code systems, ...)."""
    return copy.deepcopy(
        [
            c
            for name, c in sorted(_members().items())
            if name.count("/") == 1 and "resourceType" in c
        ]
    )
