"""The Plan-Net IG package's own example resources and SearchParameters, read from its .tgz.

The package is reference data outside the repository (see issue 9): `FHIR_PACKAGES_DIR` names the
folder holding it, by default `../shared/fhir-packages` beside the checkout. Tests that need it
skip, saying why, when it is absent.
"""

from __future__ import annotations

import json
import os
import tarfile
from functools import cache
from pathlib import Path

import pytest

PLAN_NET_TGZ = "hl7.fhir.us.davinci-pdex-plan-net-1.2.0.tgz"
REPO = Path(__file__).resolve().parents[2]


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


def examples() -> list[dict]:
    """The package's 49 example resources."""
    return [c for name, c in sorted(_members().items()) if name.startswith("package/example/")]


def search_parameters() -> list[dict]:
    """The package's 55 SearchParameter resources."""
    return [
        c for name, c in sorted(_members().items()) if name.startswith("package/SearchParameter-")
    ]


def package_resources() -> list[dict]:
    """Every definition resource of the package (profiles, value sets, code systems, ...)."""
    return [
        c for name, c in sorted(_members().items()) if name.count("/") == 1 and "resourceType" in c
    ]
