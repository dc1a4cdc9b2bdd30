"""The vendored NDH SearchParameter bundle: valid FHIR, compilable FHIRPath, faithful to its FSH."""

from __future__ import annotations

import json
from pathlib import Path

import fhirpathpy
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.searchparameter import SearchParameter
from fhirpathpy.models import models

from directory.registry import SUPPORTED_TYPES
from tests import plannet

ROOT = Path(__file__).resolve().parents[2] / "directory" / "searchparams"
BUNDLE = ROOT / "data" / "ndh-search-parameters.json"
SUPPORTED = set(SUPPORTED_TYPES)
NDH = "http://hl7.org/fhir/us/ndh/"


def load_bundle() -> dict:
    return json.loads(BUNDLE.read_text(encoding="utf-8"))


def parameters() -> list[dict]:
    return [entry["resource"] for entry in load_bundle()["entry"]]


def expressions(param: dict) -> list[str]:
    """The parameter's own expression and, for a composite, its components' ones."""
    return [param["expression"], *(c["expression"] for c in param.get("component", []))]


def test_bundle_is_a_valid_r4_collection_of_search_parameters():
    bundle = Bundle.model_validate(load_bundle())
    assert bundle.type == "collection"
    for entry in load_bundle()["entry"]:
        param = SearchParameter.model_validate(entry["resource"])
        assert entry["fullUrl"] == param.url
        assert param.url.startswith(f"{NDH}SearchParameter/")


def test_only_directory_types_and_every_one_covered():
    params = parameters()
    bases = {b for p in params for b in p["base"]}
    assert bases <= SUPPORTED
    assert bases == SUPPORTED  # verification-status alone spans all nine
    assert all(p["status"] == "active" and p["description"] for p in params)
    assert len({p["url"] for p in params}) == len(params)


def test_verification_status_parameter_is_included():
    [param] = [p for p in parameters() if p["code"] == "verification-status"]
    assert set(param["base"]) == SUPPORTED
    assert f"{NDH}StructureDefinition/base-ext-verification-status" in param["expression"]
    assert param["type"] == "token"


def test_reference_parameters_name_targets_and_chains_are_lists():
    for param in parameters():
        if param["type"] == "reference":
            assert param["target"], param["id"]
            assert set(param["target"]) <= SUPPORTED, param["id"]
        for key in ("target", "chain", "modifier", "base"):
            assert isinstance(param.get(key, []), list), (param["id"], key)


def test_converter_reproduces_the_vendored_bundle_from_fsh():
    """The FSH the bundle came from is not vendored; check the converter on a sample of it."""
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("ndh_fsh", ROOT / "tools" / "ndh_fsh_to_bundle.py")
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    fsh = """
Instance: practitionerrole-network
InstanceOf: SearchParameter
Usage: #definition
Title: "PractitionerRole network"
* status = #active
* code = #network
* name = "PractitionerroleNetworkSearchParameter"
* description = "Use this search parameter to find records linked to specific networks to evaluate in-network participation and coverage pathways. Applies to PractitionerRole records."
* url = "http://hl7.org/fhir/us/ndh/SearchParameter/practitionerrole-network"
* base[0] = #PractitionerRole
* type = #reference
* expression = "PractitionerRole.extension.where(url='http://hl7.org/fhir/us/ndh/StructureDefinition/base-ext-network-reference').value.ofType(Reference)"
* xpathUsage = #normal
* target = #Organization
//* multipleOr = true
* chain[0] = #identifier
* chain[+] = "name"
* chain[+] = "partof"

Instance: verificationresult-status
InstanceOf: SearchParameter
* base[0] = #VerificationResult
* code = #status
"""  # noqa: E501 - the rule lines are NDH's own
    kept, skipped = module.convert(fsh)
    [vendored] = [p for p in parameters() if p["id"] == "practitionerrole-network"]
    assert kept == [vendored]
    assert [s["id"] for s in skipped] == ["verificationresult-status"]
    with pytest.raises(ValueError, match="unsupported"):
        module.convert("Instance: x\nInstanceOf: SearchParameter\n* base[0] = #Group\nRuleSet: y")


@pytest.mark.parametrize("param", parameters(), ids=lambda p: p["id"])
def test_every_expression_compiles_and_runs_over_the_plan_net_examples(param):
    model = models["r4"]
    compiled = [fhirpathpy.compile(e, model) for e in expressions(param)]
    evaluated = 0
    for example in plannet.examples():
        if example["resourceType"] in param["base"]:
            for run in compiled:
                assert isinstance(run(example), list)
                evaluated += 1
    # Group has no Plan-Net example; every other base has at least one.
    assert evaluated or param["base"] == ["Group"]


def test_shared_definitions_select_what_plan_net_selects():
    """Where NDH repeats a Plan-Net definition, the IG's examples carry values for it: the
    expression, run with the R4 model (needed for `value.ofType(...)`), must find them."""
    plan_net = {(base, p["code"]): p for p in plannet.search_parameters() for base in p["base"]}
    model = models["r4"]
    checked = 0
    for param in parameters():
        for base in param["base"]:
            other = plan_net.get((base, param["code"]))
            if not other or other["expression"] != param["expression"]:
                continue
            ours = fhirpathpy.compile(param["expression"], model)
            found = [ours(e) for e in plannet.examples() if e["resourceType"] == base]
            assert any(found), (base, param["code"])
            checked += 1
    assert checked >= 10
