"""The sample directory fixture, `loaddirectory` and `generatedirectory`."""

import json
import re
from collections import Counter
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from fhir.resources.R4B import get_fhir_model_class

from directory.management.commands.loaddirectory import DEFAULT_PATH, dependency_groups
from directory.models import ReferenceIndex, Resource
from directory.registry import RESOURCE_TYPES
from directory.validation import validate_resource
from sampledata.generator import DirectoryGenerator
from sampledata.people import is_valid_npi
from tests.factories import NPI_SYSTEM, npi_check_digit

SAMPLE = json.loads(Path(DEFAULT_PATH).read_text(encoding="utf-8"))
SAMPLE_RESOURCES = [entry["resource"] for entry in SAMPLE["entry"]]
SAMPLE_COUNTS = Counter(r["resourceType"] for r in SAMPLE_RESOURCES)


def run(command, *args, **options) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out, **options)
    return out.getvalue()


def stored_counts() -> Counter:
    return Counter(Resource.objects.filter(deleted=False).values_list("resource_type", flat=True))


def npis(resources) -> list[str]:
    return [
        ident["value"]
        for r in resources
        for ident in r.get("identifier", [])
        if ident.get("system") == NPI_SYSTEM
    ]


def write_bundle(tmp_path, resources, name="bundle.json") -> str:
    path = tmp_path / name
    bundle = {"resourceType": "Bundle", "type": "collection"}
    bundle["entry"] = [{"resource": r} for r in resources]
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------- the sample file


def test_sample_is_a_few_hundred_valid_resources():
    assert SAMPLE["resourceType"] == "Bundle" and SAMPLE["type"] == "collection"
    assert 300 <= len(SAMPLE_RESOURCES) <= 500
    assert SAMPLE_COUNTS["Practitioner"] == 150
    assert set(SAMPLE_COUNTS) == {
        "Organization",
        "Location",
        "Practitioner",
        "PractitionerRole",
        "Endpoint",
    }
    for resource in SAMPLE_RESOURCES:
        validate_resource(resource["resourceType"], resource)
    keys = [(r["resourceType"], r["id"]) for r in SAMPLE_RESOURCES]
    assert len(set(keys)) == len(keys)


def test_sample_npis_are_valid_and_unique():
    values = npis(SAMPLE_RESOURCES)
    assert len(values) == SAMPLE_COUNTS["Practitioner"] + SAMPLE_COUNTS["Organization"]
    assert len(set(values)) == len(values)
    for value in values:
        assert re.fullmatch(r"[12]\d{9}", value)
        assert npi_check_digit(value[:9]) == value[9]
    practitioners = [r for r in SAMPLE_RESOURCES if r["resourceType"] == "Practitioner"]
    assert all(p["id"] == f"prac-{npis([p])[0]}" for p in practitioners)


def test_sample_names_include_accents_and_hyphens():
    families = [
        r["name"][0]["family"] for r in SAMPLE_RESOURCES if r["resourceType"] == "Practitioner"
    ]
    assert any("-" in f for f in families)
    assert {"Müller", "Hernández"} <= set(families)


def test_sample_uses_only_example_domains():
    text = json.dumps(SAMPLE)
    hosts = re.findall(r"(?:https?://|mailto:[^@\"]+@)([a-z0-9.-]+)", text)
    assert hosts
    fictional = ("example", "example.org", "example.com", "hl7.org", "nucc.org")
    assert all(h.endswith(fictional) for h in hosts), sorted(set(hosts))
    assert all(h.split(".")[-1] in ("example", "org", "com") for h in hosts)


def test_sample_locations_have_us_positions_and_managers():
    locations = [r for r in SAMPLE_RESOURCES if r["resourceType"] == "Location"]
    for loc in locations:
        assert 18 < loc["position"]["latitude"] < 72
        assert -170 < loc["position"]["longitude"] < -65
        assert loc["managingOrganization"]["reference"].startswith("Organization/")
    assert any("partOf" in loc for loc in locations)


# ---------------------------------------------------------------- loaddirectory


@pytest.mark.django_db
def test_load_sample_counts_references_and_hierarchy():
    output = run("loaddirectory")
    assert stored_counts() == SAMPLE_COUNTS
    assert f"Loaded {len(SAMPLE_RESOURCES)} resources" in output
    # Every local reference the index recorded resolves to a stored resource.
    targets = set(Resource.objects.values_list("resource_type", "logical_id"))
    refs = ReferenceIndex.objects.filter(external=False).values_list("target_type", "target_id")
    assert set(refs) <= targets
    roles = ReferenceIndex.objects.filter(resource_type="PractitionerRole", param="practitioner")
    assert roles.count() == SAMPLE_COUNTS["PractitionerRole"]
    # Department -> hospital -> health system.
    parents = dict(
        ReferenceIndex.objects.filter(resource_type="Organization", param="partof").values_list(
            "resource__logical_id", "target_id"
        )
    )
    assert parents["org-riverbend-mc-ed"] == "org-riverbend-mc"
    assert parents["org-riverbend-mc"] == "org-riverbend"


@pytest.mark.django_db
def test_load_refuses_existing_ids_and_can_skip_them():
    run("loaddirectory")
    with pytest.raises(CommandError, match="already exist"):
        run("loaddirectory")
    output = run("loaddirectory", skip_existing=True)
    assert f"Skipped {len(SAMPLE_RESOURCES)} existing" in output
    assert stored_counts() == SAMPLE_COUNTS


@pytest.mark.django_db
def test_broken_reference_loads_nothing(tmp_path):
    broken = [dict(r) for r in SAMPLE_RESOURCES]
    role = next(r for r in broken if r["resourceType"] == "PractitionerRole")
    role["practitioner"] = {"reference": "Practitioner/not-there"}
    path = write_bundle(tmp_path, broken)
    # Small batches: several are written before the bad one, and all must roll back.
    with pytest.raises(CommandError, match="nothing was loaded"):
        run("loaddirectory", path, batch_size=20)
    assert Resource.objects.count() == 0


@pytest.mark.django_db
def test_invalid_resource_is_named(tmp_path):
    bad = [*SAMPLE_RESOURCES[:5], {"resourceType": "Endpoint", "id": "ep-bad", "status": "on"}]
    with pytest.raises(CommandError, match=r"entry\[5\] \(Endpoint/ep-bad\)"):
        run("loaddirectory", write_bundle(tmp_path, bad))
    not_bundle = tmp_path / "patient.json"
    not_bundle.write_text('{"resourceType": "Patient"}', encoding="utf-8")
    with pytest.raises(CommandError, match="not a FHIR Bundle"):
        run("loaddirectory", str(not_bundle))
    with pytest.raises(CommandError, match="Cannot read"):
        run("loaddirectory", str(tmp_path / "missing.json"))
    assert Resource.objects.count() == 0


@pytest.mark.django_db
def test_same_id_twice_in_input_is_refused():
    with pytest.raises(CommandError, match="more than once"):
        run("loaddirectory", str(DEFAULT_PATH), str(DEFAULT_PATH))


def test_dependency_order_comes_from_references():
    org = {
        "resourceType": "Organization",
        "id": "o",
        "endpoint": [{"reference": "Endpoint/e"}],
        "partOf": {"reference": "Organization/parent"},
    }
    resources = {
        ("PractitionerRole", "r"): {
            "practitioner": {"reference": "Practitioner/p"},
            "organization": {"reference": "Organization/o"},
        },
        ("Practitioner", "p"): {},
        ("Organization", "o"): org,
        ("Endpoint", "e"): {"managingOrganization": {"reference": "Organization/o"}},
        ("Organization", "parent"): {},
    }
    groups = dependency_groups(resources)
    position = {key: i for i, group in enumerate(groups) for key in group}
    assert position[("Organization", "parent")] < position[("Organization", "o")]
    # The Organization/Endpoint cycle stays together in one group.
    assert position[("Endpoint", "e")] == position[("Organization", "o")]
    assert position[("Practitioner", "p")] < position[("PractitionerRole", "r")]
    assert position[("Organization", "o")] < position[("PractitionerRole", "r")]


# ---------------------------------------------------------------- generatedirectory


def generated(practitioners, organizations, seed) -> list[dict]:
    gen = DirectoryGenerator(practitioners, organizations, seed)
    # Payer groups first, then organizations; then practitioner blocks.
    groups = [*gen.organization_groups(), *gen.practitioner_groups()]
    return [content for group in groups for _, content in group]


@pytest.mark.django_db
def test_generator_loads_requested_counts_with_valid_npis():
    output = run("generatedirectory", practitioners=300, seed=3, batch_size=400)
    assert "Loaded" in output and "resources/s" in output
    counts = stored_counts()
    assert counts["Practitioner"] == 300
    assert 300 <= counts["PractitionerRole"] <= 900
    top_level = Resource.objects.filter(
        resource_type="Organization", logical_id__regex=r"^g3-org-\d+$"
    )
    assert top_level.count() == 7  # default: one organization per 40 practitioners
    contents = [json.loads(c) for c in Resource.objects.values_list("content", flat=True)]
    values = npis(contents)
    # Providers carry NPIs; health plans (NAIC codes) and their networks do not.
    plans = {"payer", "ntwk"} & {
        coding["code"]
        for r in contents
        if r["resourceType"] == "Organization"
        for t in r["type"]
        for coding in t["coding"]
    }
    assert plans == {"payer", "ntwk"}
    providers = counts["Organization"] - sum(
        1 for r in contents if r["id"].startswith(("g3-payer-", "g3-net-"))
    )
    assert len(values) == len(set(values)) == counts["Practitioner"] + providers
    assert all(is_valid_npi(v) and npi_check_digit(v[:9]) == v[9] for v in values)
    targets = set(Resource.objects.values_list("resource_type", "logical_id"))
    refs = ReferenceIndex.objects.filter(external=False).values_list("target_type", "target_id")
    assert set(refs) <= targets
    with pytest.raises(CommandError, match="already exists"):
        run("generatedirectory", practitioners=10, seed=3)


def test_generator_is_deterministic_per_seed():
    first = generated(300, 20, seed=5)
    assert first == generated(300, 20, seed=5)
    assert first != generated(300, 20, seed=6)


def test_generated_resources_are_valid():
    for content in generated(120, 10, seed=9):
        if content["resourceType"] in RESOURCE_TYPES:
            validate_resource(content["resourceType"], content)
        else:  # a type this server does not store yet: the R4 model alone
            get_fhir_model_class(content["resourceType"]).model_validate(content)


def test_generator_distributions_are_plausible():
    resources = generated(300, 60, seed=11)
    roles = [r for r in resources if r["resourceType"] == "PractitionerRole"]
    practitioners = [r for r in resources if r["resourceType"] == "Practitioner"]
    by_practitioner = {
        r["practitioner"]["reference"]: r["specialty"][0]["coding"][0]["code"] for r in roles
    }
    specialties = Counter(by_practitioner.values())
    top_code, top_count = specialties.most_common(1)[0]
    assert top_code in {"207R00000X", "207Q00000X", "363L00000X"}
    assert 0.08 <= top_count / len(practitioners) <= 0.30
    assert len(specialties) >= 15
    states = Counter(r["address"]["state"] for r in resources if r["resourceType"] == "Location")
    assert len(states) >= 10 and max(states.values()) / sum(states.values()) < 0.4
    genders = Counter(p["gender"] for p in practitioners)
    assert 0.3 < genders["female"] / len(practitioners) < 0.6
    assert len({p["name"][0]["family"] for p in practitioners}) > 100
