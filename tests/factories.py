"""factory-boy factories that build FHIR resources and store them through the storage layer."""

import factory

from directory import storage

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
NUCC_SYSTEM = "http://nucc.org/provider-taxonomy"


def npi_check_digit(base9: str) -> str:
    """Luhn check digit over the NPI prefix 80840 plus the first nine digits."""
    digits = [int(d) for d in "80840" + base9]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def make_npi(n: int) -> str:
    base = f"1{n % 100_000_000:08d}"
    return base + npi_check_digit(base)


class FHIRFactory(factory.Factory):
    """Builds a resource dict; `create()` stores it and returns the stored JSON."""

    class Meta:
        model = dict
        abstract = True

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        return {k: v for k, v in kwargs.items() if v is not None}

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        content = cls._build(model_class, *args, **kwargs)
        if content.get("id"):
            return storage.update(content["resourceType"], content["id"], content).content
        return storage.create(content["resourceType"], content).content


class EndpointFactory(FHIRFactory):
    resourceType = "Endpoint"
    id = factory.Sequence(lambda n: f"ep-{n}")
    status = "active"
    name = factory.Sequence(lambda n: f"Endpoint {n}")
    connectionType = factory.LazyFunction(
        lambda: {
            "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
            "code": "hl7-fhir-rest",
        }
    )
    payloadType = factory.LazyFunction(
        lambda: [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/endpoint-payload-type",
                        "code": "any",
                    }
                ]
            }
        ]
    )
    address = factory.Sequence(lambda n: f"https://fhir{n}.example.org/r4")


class OrganizationFactory(FHIRFactory):
    resourceType = "Organization"
    id = factory.Sequence(lambda n: f"org-{n}")
    active = True
    name = factory.Sequence(lambda n: f"Organization {n}")
    identifier = factory.Sequence(lambda n: [{"system": NPI_SYSTEM, "value": make_npi(n + 500)}])
    type = factory.LazyFunction(
        lambda: [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                        "code": "prov",
                    }
                ]
            }
        ]
    )
    address = factory.LazyFunction(
        lambda: [
            {
                "line": ["1 Main Street"],
                "city": "Boston",
                "state": "MA",
                "postalCode": "02110",
                "country": "US",
            }
        ]
    )


class PractitionerFactory(FHIRFactory):
    resourceType = "Practitioner"
    id = factory.Sequence(lambda n: f"prac-{n}")
    active = True
    identifier = factory.Sequence(lambda n: [{"system": NPI_SYSTEM, "value": make_npi(n)}])
    name = factory.Sequence(lambda n: [{"family": f"Family{n}", "given": [f"Given{n}"]}])


class LocationFactory(FHIRFactory):
    resourceType = "Location"
    id = factory.Sequence(lambda n: f"loc-{n}")
    status = "active"
    name = factory.Sequence(lambda n: f"Location {n}")
    address = factory.LazyFunction(
        lambda: {
            "line": ["5 Clinic Road"],
            "city": "Cambridge",
            "state": "MA",
            "postalCode": "02139",
        }
    )
    position = factory.LazyFunction(lambda: {"longitude": -71.1, "latitude": 42.37})


class PractitionerRoleFactory(FHIRFactory):
    resourceType = "PractitionerRole"
    id = factory.Sequence(lambda n: f"role-{n}")
    active = True
    code = factory.LazyFunction(
        lambda: [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/practitioner-role",
                        "code": "doctor",
                    }
                ]
            }
        ]
    )
    specialty = factory.LazyFunction(
        lambda: [
            {
                "coding": [
                    {"system": NUCC_SYSTEM, "code": "207R00000X", "display": "Internal Medicine"}
                ]
            }
        ]
    )


def _concept(system: str, code: str) -> list[dict]:
    return [{"coding": [{"system": system, "code": code}]}]


PLAN_NET_CS = "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem"


class HealthcareServiceFactory(FHIRFactory):
    resourceType = "HealthcareService"
    id = factory.Sequence(lambda n: f"hcs-{n}")
    active = True
    name = factory.Sequence(lambda n: f"Service {n}")
    category = factory.LazyFunction(
        lambda: _concept(f"{PLAN_NET_CS}/HealthcareServiceCategoryCS", "outpat")
    )


class OrganizationAffiliationFactory(FHIRFactory):
    resourceType = "OrganizationAffiliation"
    id = factory.Sequence(lambda n: f"affil-{n}")
    active = True
    code = factory.LazyFunction(
        lambda: _concept(f"{PLAN_NET_CS}/OrganizationAffiliationRoleCS", "outpatient")
    )


class InsurancePlanFactory(FHIRFactory):
    resourceType = "InsurancePlan"
    id = factory.Sequence(lambda n: f"plan-{n}")
    status = "active"
    name = factory.Sequence(lambda n: f"Plan {n}")
    type = factory.LazyFunction(lambda: _concept(f"{PLAN_NET_CS}/InsuranceProductTypeCS", "hmo"))


class GroupFactory(FHIRFactory):
    resourceType = "Group"
    id = factory.Sequence(lambda n: f"group-{n}")
    type = "practitioner"  # Group.type and Group.actual are required (1..1) in R4
    actual = True


class SearchParameterFactory(FHIRFactory):
    """A custom search parameter, `draft` so it stays out of the registry unless a test says."""

    resourceType = "SearchParameter"
    id = factory.Sequence(lambda n: f"sp-{n}")
    url = factory.Sequence(lambda n: f"http://example.org/fhir/SearchParameter/custom-{n}")
    name = factory.Sequence(lambda n: f"Custom{n}")
    status = "draft"
    description = "Organizations by the text of their alias"
    code = factory.Sequence(lambda n: f"custom-{n}")
    base = factory.LazyFunction(lambda: ["Organization"])
    type = "string"
    expression = "Organization.alias"


FACTORIES = {
    "Organization": OrganizationFactory,
    "Practitioner": PractitionerFactory,
    "PractitionerRole": PractitionerRoleFactory,
    "Location": LocationFactory,
    "Endpoint": EndpointFactory,
    "HealthcareService": HealthcareServiceFactory,
    "OrganizationAffiliation": OrganizationAffiliationFactory,
    "InsurancePlan": InsurancePlanFactory,
    "Group": GroupFactory,
    "SearchParameter": SearchParameterFactory,
}
