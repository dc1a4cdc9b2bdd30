"""Code systems, Plan-Net profile and extension URLs, specialties and service kinds."""

from __future__ import annotations

from dataclasses import dataclass

from .weighted import _parse_table

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
NUCC_SYSTEM = "http://nucc.org/provider-taxonomy"
ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/practitioner-role"
ORG_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/organization-type"
CONNECTION_SYSTEM = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
PAYLOAD_SYSTEM = "http://terminology.hl7.org/CodeSystem/endpoint-payload-type"
ROLE_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
PHYSICAL_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/location-physical-type"
DEGREE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0360"
NAIC_SYSTEM = "urn:oid:2.16.840.1.113883.6.300"  # US insurers' NAIC company codes
SERVICE_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/service-type"

# Plan-Net (HL7 Da Vinci PDex Plan-Net STU 1.2) profiles, extensions and code systems.
PLAN_NET = "http://hl7.org/fhir/us/davinci-pdex-plan-net"
PLAN_NET_PROFILE = {
    kind: f"{PLAN_NET}/StructureDefinition/plannet-{kind}"
    for kind in (
        "Organization",
        "Network",
        "Location",
        "HealthcareService",
        "OrganizationAffiliation",
        "InsurancePlan",
    )
}
NETWORK_REFERENCE_URL = f"{PLAN_NET}/StructureDefinition/network-reference"
LOCATION_REFERENCE_URL = f"{PLAN_NET}/StructureDefinition/location-reference"
DELIVERY_METHOD_URL = f"{PLAN_NET}/StructureDefinition/delivery-method"
PLAN_NET_ORG_TYPE = f"{PLAN_NET}/CodeSystem/OrgTypeCS"
SERVICE_CATEGORY_SYSTEM = f"{PLAN_NET}/CodeSystem/HealthcareServiceCategoryCS"
DELIVERY_METHOD_SYSTEM = f"{PLAN_NET}/CodeSystem/DeliveryMethodCS"
VIRTUAL_MODALITY_SYSTEM = f"{PLAN_NET}/CodeSystem/VirtualModalitiesCS"
PLAN_NET_AFFILIATION_ROLE = f"{PLAN_NET}/CodeSystem/OrganizationAffiliationRoleCS"
PRODUCT_TYPE_SYSTEM = f"{PLAN_NET}/CodeSystem/InsuranceProductTypeCS"
PLAN_TYPE_SYSTEM = f"{PLAN_NET}/CodeSystem/InsurancePlanTypeCS"


# ---------------------------------------------------------------- specialties


@dataclass(frozen=True)
class Specialty:
    code: str  # NUCC provider taxonomy code
    display: str
    weight: float  # rough count of active US clinicians, thousands
    role: str  # practitioner-role code
    degree: str  # v2-0360 degree code most holders carry
    clinic: str  # word used when naming a clinic of this specialty


_SPECIALTIES = """
207R00000X | Internal Medicine | 120 | doctor | MD | Internal Medicine
207Q00000X | Family Medicine | 118 | doctor | MD | Family Medicine
363L00000X | Nurse Practitioner | 95 | nurse | NP | Primary Care
208000000X | Pediatrics | 60 | doctor | MD | Pediatrics
207P00000X | Emergency Medicine | 45 | doctor | MD | Emergency Medicine
207L00000X | Anesthesiology | 42 | doctor | MD | Anesthesiology
207V00000X | Obstetrics & Gynecology | 42 | doctor | MD | Women's Health
2084P0800X | Psychiatry | 38 | doctor | MD | Behavioral Health
363A00000X | Physician Assistant | 35 | doctor | PA | Urgent Care
2085R0202X | Diagnostic Radiology | 28 | doctor | MD | Imaging
208600000X | Surgery | 25 | doctor | MD | Surgical Associates
207RC0000X | Cardiovascular Disease | 22 | doctor | MD | Heart & Vascular
207X00000X | Orthopaedic Surgery | 19 | doctor | MD | Orthopedics
207W00000X | Ophthalmology | 19 | doctor | MD | Eye Care
207RH0003X | Hematology & Oncology | 16 | doctor | MD | Cancer Care
207RG0100X | Gastroenterology | 15 | doctor | MD | Digestive Health
2084N0400X | Neurology | 14 | doctor | MD | Neurology
207RP1001X | Pulmonary Disease | 13 | doctor | MD | Lung & Sleep
207N00000X | Dermatology | 13 | doctor | MD | Dermatology
207RN0300X | Nephrology | 11 | doctor | MD | Kidney Care
208800000X | Urology | 10 | doctor | MD | Urology
207Y00000X | Otolaryngology | 10 | doctor | MD | Ear, Nose & Throat
208100000X | Physical Medicine & Rehabilitation | 10 | doctor | DO | Rehabilitation
207RI0200X | Infectious Disease | 9 | doctor | MD | Infectious Disease
207RE0101X | Endocrinology, Diabetes & Metabolism | 8 | doctor | MD | Diabetes & Endocrine
207RR0500X | Rheumatology | 6 | doctor | MD | Rheumatology
207K00000X | Allergy & Immunology | 4.5 | doctor | MD | Allergy & Asthma
183500000X | Pharmacist | 8 | pharmacist | PharmD | Pharmacy
"""

SPECIALTIES = [
    Specialty(code, display, float(weight), role, degree, clinic)
    for code, display, weight, role, degree, clinic in _parse_table(_SPECIALTIES, 6)
]
SPECIALTY_BY_CODE = {s.code: s for s in SPECIALTIES}

# How a practice of each specialty is described as a Plan-Net HealthcareService and affiliation:
# HealthcareServiceCategoryCS code, a HealthcareServiceTypeVS code where one fits (the value set
# is mostly social services), and OrganizationAffiliationRoleCS code. Unlisted: outpatient care.
_SERVICE_KINDS = """
207P00000X | emerg | - | urgent
2084P0800X | behav | 316 | behavioral
363A00000X | urg | - | urgent
183500000X | pharm | 537 | pharmacy
207W00000X | vis | - | outpatient
207V00000X | prov | 559 | outpatient
207RH0003X | prov | 501 | outpatient
207RE0101X | prov | 532 | outpatient
207RP1001X | prov | 535 | outpatient
207R00000X | prov | 554 | outpatient
207Q00000X | prov | 554 | outpatient
363L00000X | prov | 554 | outpatient
208000000X | prov | 495 | outpatient
"""
SERVICE_KIND = {
    code: (category, None if service_type == "-" else service_type, role)
    for code, category, service_type, role in _parse_table(_SERVICE_KINDS, 4)
}
DEFAULT_SERVICE_KIND = ("outpat", None, "outpatient")
SERVICE_CATEGORY_DISPLAY = {
    "behav": "Behavioral Health",
    "emerg": "Emergency care",
    "hosp": "Hospital",
    "outpat": "Clinic or Outpatient Facility",
    "prov": "Medical Provider",
    "pharm": "Pharmacy",
    "urg": "Urgent Care",
    "vis": "Vision",
    "group": "Medical Group",
}
SERVICE_TYPE_DISPLAY = {
    "316": "Depression",
    "537": "Medication Reviews",
    "559": "Women's Health",
    "501": "Cancer Services",
    "532": "Diabetes Education s",
    "535": "Pulmonary Rehabilita",
    "554": "Chronic Disease Management",
    "495": "Youth Health",
}

ROLE_DISPLAY = {"doctor": "Doctor", "nurse": "Nurse", "pharmacist": "Pharmacist"}
DEGREE_DISPLAY = {
    "MD": "Doctor of Medicine",
    "DO": "Doctor of Osteopathy",
    "NP": "Nurse Practitioner",
    "PA": "Physician Assistant",
    "PharmD": "Doctor of Pharmacy",
    "RN": "Registered Nurse",
}
