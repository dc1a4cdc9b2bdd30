"""Synthetic directory data: reference tables, one builder module per resource family, and
the generator that drives them (`manage.py generatedirectory`, sampledata/sample_directory.py).

Formerly directory/synthetic.py; every public name it had is importable from this package.
"""

from .elements import (
    address as address,
)
from .elements import (
    coding as coding,
)
from .elements import (
    concept as concept,
)
from .elements import (
    extension_reference as extension_reference,
)
from .elements import (
    phone as phone,
)
from .elements import (
    profiled as profiled,
)
from .elements import (
    ref as ref,
)
from .elements import (
    without_empty as without_empty,
)
from .endpoints import (
    direct_endpoint as direct_endpoint,
)
from .endpoints import (
    fhir_endpoint as fhir_endpoint,
)
from .generator import (
    BLOCK as BLOCK,
)
from .generator import (
    CITY_CHOICE as CITY_CHOICE,
)
from .generator import (
    GIVEN_CHOICE as GIVEN_CHOICE,
)
from .generator import (
    MAX_AFFILIATION_LINKS as MAX_AFFILIATION_LINKS,
)
from .generator import (
    MAX_PAYERS as MAX_PAYERS,
)
from .generator import (
    MULTI_SPECIALTY_SIZE as MULTI_SPECIALTY_SIZE,
)
from .generator import (
    NETWORK_TIERS as NETWORK_TIERS,
)
from .generator import (
    ORGANIZATIONS_PER_PAYER as ORGANIZATIONS_PER_PAYER,
)
from .generator import (
    PAYER_NAMES as PAYER_NAMES,
)
from .generator import (
    PRACTITIONERS_PER_LOCATION as PRACTITIONERS_PER_LOCATION,
)
from .generator import (
    PRODUCTS as PRODUCTS,
)
from .generator import (
    ROLE_COUNTS as ROLE_COUNTS,
)
from .generator import (
    SPECIALTY_CHOICE as SPECIALTY_CHOICE,
)
from .generator import (
    STATES as STATES,
)
from .generator import (
    SURNAME_CHOICE as SURNAME_CHOICE,
)
from .generator import (
    VIRTUAL_MODALITIES as VIRTUAL_MODALITIES,
)
from .generator import (
    DirectoryGenerator as DirectoryGenerator,
)
from .generator import (
    OrgSlot as OrgSlot,
)
from .generator import (
    Site as Site,
)
from .generator import (
    payer_count as payer_count,
)
from .locations import (
    LOCATION_TYPES as LOCATION_TYPES,
)
from .locations import (
    PHYSICAL_TYPE_DISPLAY as PHYSICAL_TYPE_DISPLAY,
)
from .locations import (
    area_location as area_location,
)
from .locations import (
    location as location,
)
from .organizations import (
    network as network,
)
from .organizations import (
    organization as organization,
)
from .organizations import (
    organization_affiliation as organization_affiliation,
)
from .organizations import (
    payer_organization as payer_organization,
)
from .people import (
    FEMALE_NAMES as FEMALE_NAMES,
)
from .people import (
    MALE_NAMES as MALE_NAMES,
)
from .people import (
    SURNAMES as SURNAMES,
)
from .people import (
    display_name as display_name,
)
from .people import (
    is_valid_npi as is_valid_npi,
)
from .people import (
    mailbox_name as mailbox_name,
)
from .people import (
    make_npi as make_npi,
)
from .people import (
    npi_check_digit as npi_check_digit,
)
from .people import (
    npi_for_index as npi_for_index,
)
from .places import (
    CITIES as CITIES,
)
from .places import (
    NAME_PREFIXES as NAME_PREFIXES,
)
from .places import (
    PRACTICE_SUFFIXES as PRACTICE_SUFFIXES,
)
from .places import (
    STREET_NAMES as STREET_NAMES,
)
from .places import (
    STREET_SUFFIXES as STREET_SUFFIXES,
)
from .places import (
    SYSTEM_SUFFIXES as SYSTEM_SUFFIXES,
)
from .places import (
    City as City,
)
from .plans import (
    insurance_plan as insurance_plan,
)
from .practitioners import (
    practitioner as practitioner,
)
from .practitioners import (
    practitioner_role as practitioner_role,
)
from .services import (
    delivery_method as delivery_method,
)
from .services import (
    healthcare_service as healthcare_service,
)
from .terminology import (
    CONNECTION_SYSTEM as CONNECTION_SYSTEM,
)
from .terminology import (
    DEFAULT_SERVICE_KIND as DEFAULT_SERVICE_KIND,
)
from .terminology import (
    DEGREE_DISPLAY as DEGREE_DISPLAY,
)
from .terminology import (
    DEGREE_SYSTEM as DEGREE_SYSTEM,
)
from .terminology import (
    DELIVERY_METHOD_SYSTEM as DELIVERY_METHOD_SYSTEM,
)
from .terminology import (
    DELIVERY_METHOD_URL as DELIVERY_METHOD_URL,
)
from .terminology import (
    LOCATION_REFERENCE_URL as LOCATION_REFERENCE_URL,
)
from .terminology import (
    NAIC_SYSTEM as NAIC_SYSTEM,
)
from .terminology import (
    NETWORK_REFERENCE_URL as NETWORK_REFERENCE_URL,
)
from .terminology import (
    NPI_SYSTEM as NPI_SYSTEM,
)
from .terminology import (
    NUCC_SYSTEM as NUCC_SYSTEM,
)
from .terminology import (
    ORG_TYPE_SYSTEM as ORG_TYPE_SYSTEM,
)
from .terminology import (
    PAYLOAD_SYSTEM as PAYLOAD_SYSTEM,
)
from .terminology import (
    PHYSICAL_TYPE_SYSTEM as PHYSICAL_TYPE_SYSTEM,
)
from .terminology import (
    PLAN_NET as PLAN_NET,
)
from .terminology import (
    PLAN_NET_AFFILIATION_ROLE as PLAN_NET_AFFILIATION_ROLE,
)
from .terminology import (
    PLAN_NET_ORG_TYPE as PLAN_NET_ORG_TYPE,
)
from .terminology import (
    PLAN_NET_PROFILE as PLAN_NET_PROFILE,
)
from .terminology import (
    PLAN_TYPE_SYSTEM as PLAN_TYPE_SYSTEM,
)
from .terminology import (
    PRODUCT_TYPE_SYSTEM as PRODUCT_TYPE_SYSTEM,
)
from .terminology import (
    ROLE_CODE_SYSTEM as ROLE_CODE_SYSTEM,
)
from .terminology import (
    ROLE_DISPLAY as ROLE_DISPLAY,
)
from .terminology import (
    ROLE_SYSTEM as ROLE_SYSTEM,
)
from .terminology import (
    SERVICE_CATEGORY_DISPLAY as SERVICE_CATEGORY_DISPLAY,
)
from .terminology import (
    SERVICE_CATEGORY_SYSTEM as SERVICE_CATEGORY_SYSTEM,
)
from .terminology import (
    SERVICE_KIND as SERVICE_KIND,
)
from .terminology import (
    SERVICE_TYPE_DISPLAY as SERVICE_TYPE_DISPLAY,
)
from .terminology import (
    SERVICE_TYPE_SYSTEM as SERVICE_TYPE_SYSTEM,
)
from .terminology import (
    SPECIALTIES as SPECIALTIES,
)
from .terminology import (
    SPECIALTY_BY_CODE as SPECIALTY_BY_CODE,
)
from .terminology import (
    VIRTUAL_MODALITY_SYSTEM as VIRTUAL_MODALITY_SYSTEM,
)
from .terminology import (
    Specialty as Specialty,
)
from .weighted import (
    Weighted as Weighted,
)
