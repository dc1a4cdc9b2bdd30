"""Reference tables and resource builders for realistic synthetic directory data.

Frequencies are rough public figures (US census surname counts, name popularity, physician
workforce by specialty, city populations); they only need to make generated data look plausible.
"""

from __future__ import annotations

import random
import unicodedata
from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate

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


# ---------------------------------------------------------------- weighted choice


class Weighted:
    """Items with relative weights; `pick` is a binary search over cumulative weights."""

    def __init__(self, items, weights):
        self.items = list(items)
        self.cumulative = list(accumulate(weights))
        self.total = self.cumulative[-1]

    def pick(self, rng: random.Random):
        return self.items[bisect(self.cumulative, rng.random() * self.total)]


def _parse_table(text: str, columns: int) -> list[list[str]]:
    rows = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != columns:
            raise ValueError(f"bad table row: {line!r}")
        rows.append(parts)
    return rows


# ---------------------------------------------------------------- names

# Approximate occurrences per 100,000 people for the most common US surnames (2010 census order).
_TOP_SURNAMES = """
Smith 828, Johnson 655, Williams 551, Brown 487, Jones 483, Garcia 394, Miller 386, Davis 378,
Rodriguez 368, Martinez 357, Hernandez 354, Lopez 292, Gonzalez 283, Wilson 273, Anderson 270,
Thomas 257, Taylor 255, Moore 240, Jackson 237, Martin 235, Lee 229, Perez 222, Thompson 218,
White 217, Harris 200, Sanchez 200, Clark 181, Ramirez 179, Lewis 174, Robinson 171, Walker 168,
Young 155, Allen 155, King 153, Wright 152, Scott 143, Torres 140, Nguyen 138, Hill 137,
Flores 137, Green 135, Adams 130, Nelson 126, Baker 125, Hall 124, Rivera 122, Campbell 119,
Mitchell 118, Carter 115, Roberts 114
"""

# The next names in rough frequency order; their weights follow a fitted power-law tail.
_MORE_SURNAMES = """
Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy
Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward
Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo
Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman
Butler Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton
Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina
Aguilar Stevens Murray Ford Castro Marshall Owens Harrison Fernandez McDonald Woods Washington
Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns Crawford Olson Simpson Porter
Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black
Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson
Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kelley Spencer Hawkins Arnold Pierce
Vazquez Hansen Peters Santos Hart Bradley Knight Elliott Cunningham Duncan Armstrong Hudson Carroll
Lane Riley Andrews Alvarado Ray Delgado Berry Perkins Hoffman Johnston Matthews Pena Richards
Contreras Willis Carpenter Lawrence Sandoval Wang Li Singh Park Le Pham Shah Khan Zhang Liu Huang
Yang Ali Choi Okafor Cohen Goldberg Nowak Kowalski Rossi Haddad
"""


def _surname_table() -> list[tuple[str, float]]:
    table = []
    for chunk in _TOP_SURNAMES.replace("\n", " ").split(","):
        name, count = chunk.split()
        table.append((name, float(count)))
    last_rank, last_count = len(table), table[-1][1]
    for offset, name in enumerate(_MORE_SURNAMES.split(), start=1):
        # The census curve falls roughly as rank^-0.7 beyond the first fifty names.
        table.append((name, last_count * (last_rank / (last_rank + offset)) ** 0.7))
    return table


SURNAMES = _surname_table()

# Given names as (name, relative weight) for practitioners born roughly 1955-1995.
_MALE_NAMES = """
James 33, Robert 31, John 30, Michael 29, David 24, William 23, Richard 16, Joseph 13, Thomas 13,
Christopher 12, Daniel 12, Charles 11, Matthew 10, Anthony 9, Mark 9, Steven 8, Andrew 8, Paul 7,
Donald 7, Joshua 7, Kevin 7, Brian 7, Kenneth 6, Timothy 6, Ronald 6, Jason 6, George 5, Edward 5,
Jeffrey 5, Ryan 5, Jacob 5, Nicholas 5, Eric 5, Jonathan 5, Gary 4, Stephen 4, Justin 4, Scott 4,
Brandon 4, Benjamin 4, Samuel 3, Gregory 3, Alexander 3, Patrick 3, Frank 3, Raymond 3, Jose 3,
Jack 2, Dennis 2, Jerry 2, Tyler 2, Aaron 2, Adam 2, Nathan 2, Henry 2, Zachary 2, Douglas 2,
Peter 2, Kyle 2, Jeremy 2, Sean 2, Carlos 2, Luis 2, Juan 2, Miguel 1.5, Noah 1, Ethan 1,
Walter 1, Christian 1, Keith 1, Roger 1, Terry 1, Austin 1, Gerald 1, Carl 1, Harold 1, Dylan 1,
Arthur 1, Lawrence 1, Jordan 1, Jesse 1, Bryan 1, Bruce 1, Gabriel 1, Logan 1, Alan 1, Albert 1,
Vincent 1, Philip 1, Russell 1, Bradley 1, Wei 1, Raj 1, Arjun 1, Omar 1, Ahmed 1, Vikram 1,
Hiroshi 0.5, Kwame 0.5, Chinedu 0.5, Minh 1, Sanjay 1, Rahul 1, Hao 0.5, Tariq 0.5
"""

_FEMALE_NAMES = """
Mary 26, Jennifer 20, Patricia 17, Linda 17, Elizabeth 15, Barbara 14, Susan 13, Jessica 13,
Sarah 12, Karen 11, Lisa 11, Nancy 10, Margaret 9, Sandra 9, Ashley 9, Kimberly 9, Emily 8,
Donna 8, Michelle 8, Carol 7, Amanda 7, Melissa 7, Deborah 7, Stephanie 7, Rebecca 6, Laura 6,
Sharon 6, Cynthia 6, Kathleen 6, Amy 6, Angela 6, Shirley 5, Anna 5, Brenda 5, Pamela 5,
Nicole 5, Emma 4, Samantha 4, Katherine 4, Christine 4, Debra 4, Rachel 4, Catherine 4, Carolyn 4,
Janet 4, Ruth 3, Maria 4, Heather 4, Diane 3, Virginia 3, Julie 3, Joyce 3, Victoria 3, Olivia 3,
Kelly 3, Christina 3, Lauren 3, Joan 3, Evelyn 2, Judith 2, Megan 3, Andrea 3, Cheryl 2,
Hannah 2, Jacqueline 2, Martha 2, Gloria 2, Teresa 2, Ann 2, Sara 2, Madison 1, Frances 2,
Kathryn 2, Janice 2, Jean 2, Abigail 1, Alice 2, Julia 2, Judy 2, Sophia 1, Grace 1, Denise 2,
Amber 2, Doris 1, Marilyn 1, Danielle 2, Beverly 1, Isabella 1, Theresa 1, Diana 1, Natalie 2,
Brittany 2, Charlotte 1, Marie 1, Kayla 1, Alexis 1, Lori 1, Priya 1, Mei 1, Aisha 1, Fatima 1,
Ana 1.5, Lucia 1, Carmen 1, Yuki 0.5, Ngozi 0.5, Anjali 1, Linh 1, Sofia 1, Leah 1
"""


def _name_weights(text: str) -> list[tuple[str, float]]:
    pairs = []
    for chunk in text.replace("\n", " ").split(","):
        name, weight = chunk.split()
        pairs.append((name, float(weight)))
    return pairs


MALE_NAMES = _name_weights(_MALE_NAMES)
FEMALE_NAMES = _name_weights(_FEMALE_NAMES)

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

# ---------------------------------------------------------------- geography


@dataclass(frozen=True)
class City:
    name: str
    state: str
    zip3: str
    latitude: float
    longitude: float
    population: int  # thousands, about 2020
    area_code: str


_CITIES = """
New York | NY | 100 | 40.7128 | -74.0060 | 8336 | 212
Los Angeles | CA | 900 | 34.0522 | -118.2437 | 3899 | 213
Chicago | IL | 606 | 41.8781 | -87.6298 | 2746 | 312
Houston | TX | 770 | 29.7604 | -95.3698 | 2304 | 713
Phoenix | AZ | 850 | 33.4484 | -112.0740 | 1608 | 602
Philadelphia | PA | 191 | 39.9526 | -75.1652 | 1603 | 215
San Antonio | TX | 782 | 29.4241 | -98.4936 | 1434 | 210
San Diego | CA | 921 | 32.7157 | -117.1611 | 1386 | 619
Dallas | TX | 752 | 32.7767 | -96.7970 | 1304 | 214
San Jose | CA | 951 | 37.3382 | -121.8863 | 1013 | 408
Austin | TX | 787 | 30.2672 | -97.7431 | 961 | 512
Jacksonville | FL | 322 | 30.3322 | -81.6557 | 949 | 904
Fort Worth | TX | 761 | 32.7555 | -97.3308 | 918 | 817
Columbus | OH | 432 | 39.9612 | -82.9988 | 905 | 614
Indianapolis | IN | 462 | 39.7684 | -86.1581 | 887 | 317
Charlotte | NC | 282 | 35.2271 | -80.8431 | 874 | 704
San Francisco | CA | 941 | 37.7749 | -122.4194 | 873 | 415
Seattle | WA | 981 | 47.6062 | -122.3321 | 737 | 206
Denver | CO | 802 | 39.7392 | -104.9903 | 715 | 303
Oklahoma City | OK | 731 | 35.4676 | -97.5164 | 681 | 405
Nashville | TN | 372 | 36.1627 | -86.7816 | 689 | 615
El Paso | TX | 799 | 31.7619 | -106.4850 | 678 | 915
Washington | DC | 200 | 38.9072 | -77.0369 | 689 | 202
Boston | MA | 021 | 42.3601 | -71.0589 | 675 | 617
Las Vegas | NV | 891 | 36.1699 | -115.1398 | 641 | 702
Portland | OR | 972 | 45.5152 | -122.6784 | 652 | 503
Detroit | MI | 482 | 42.3314 | -83.0458 | 639 | 313
Louisville | KY | 402 | 38.2527 | -85.7585 | 633 | 502
Memphis | TN | 381 | 35.1495 | -90.0490 | 633 | 901
Baltimore | MD | 212 | 39.2904 | -76.6122 | 585 | 410
Milwaukee | WI | 532 | 43.0389 | -87.9065 | 577 | 414
Albuquerque | NM | 871 | 35.0844 | -106.6504 | 564 | 505
Fresno | CA | 937 | 36.7378 | -119.7871 | 542 | 559
Tucson | AZ | 857 | 32.2226 | -110.9747 | 542 | 520
Sacramento | CA | 958 | 38.5816 | -121.4944 | 524 | 916
Mesa | AZ | 852 | 33.4152 | -111.8315 | 504 | 480
Kansas City | MO | 641 | 39.0997 | -94.5786 | 508 | 816
Atlanta | GA | 303 | 33.7490 | -84.3880 | 498 | 404
Omaha | NE | 681 | 41.2565 | -95.9345 | 486 | 402
Colorado Springs | CO | 809 | 38.8339 | -104.8214 | 478 | 719
Raleigh | NC | 276 | 35.7796 | -78.6382 | 467 | 919
Long Beach | CA | 908 | 33.7701 | -118.1937 | 466 | 562
Virginia Beach | VA | 234 | 36.8529 | -75.9780 | 459 | 757
Miami | FL | 331 | 25.7617 | -80.1918 | 442 | 305
Oakland | CA | 946 | 37.8044 | -122.2712 | 440 | 510
Minneapolis | MN | 554 | 44.9778 | -93.2650 | 429 | 612
Tulsa | OK | 741 | 36.1540 | -95.9928 | 413 | 918
Bakersfield | CA | 933 | 35.3733 | -119.0187 | 403 | 661
Wichita | KS | 672 | 37.6872 | -97.3301 | 397 | 316
Arlington | TX | 760 | 32.7357 | -97.1081 | 394 | 817
Aurora | CO | 800 | 39.7294 | -104.8319 | 386 | 303
Tampa | FL | 336 | 27.9506 | -82.4572 | 384 | 813
New Orleans | LA | 701 | 29.9511 | -90.0715 | 383 | 504
Cleveland | OH | 441 | 41.4993 | -81.6944 | 372 | 216
Honolulu | HI | 968 | 21.3069 | -157.8583 | 350 | 808
Anaheim | CA | 928 | 33.8366 | -117.9143 | 346 | 714
Lexington | KY | 405 | 38.0406 | -84.5037 | 322 | 859
Stockton | CA | 952 | 37.9577 | -121.2908 | 320 | 209
Henderson | NV | 890 | 36.0395 | -114.9817 | 317 | 702
Saint Paul | MN | 551 | 44.9537 | -93.0900 | 311 | 651
St. Louis | MO | 631 | 38.6270 | -90.1994 | 301 | 314
Cincinnati | OH | 452 | 39.1031 | -84.5120 | 309 | 513
Pittsburgh | PA | 152 | 40.4406 | -79.9959 | 302 | 412
Greensboro | NC | 274 | 36.0726 | -79.7920 | 299 | 336
Anchorage | AK | 995 | 61.2181 | -149.9003 | 291 | 907
Lincoln | NE | 685 | 40.8136 | -96.7026 | 291 | 402
Orlando | FL | 328 | 28.5383 | -81.3792 | 307 | 407
Plano | TX | 750 | 33.0198 | -96.6989 | 285 | 972
Irvine | CA | 926 | 33.6846 | -117.8265 | 307 | 949
Newark | NJ | 071 | 40.7357 | -74.1724 | 311 | 973
Durham | NC | 277 | 35.9940 | -78.8986 | 283 | 919
Chula Vista | CA | 919 | 32.6401 | -117.0842 | 275 | 619
Toledo | OH | 436 | 41.6528 | -83.5379 | 270 | 419
Fort Wayne | IN | 468 | 41.0793 | -85.1394 | 263 | 260
St. Petersburg | FL | 337 | 27.7676 | -82.6403 | 258 | 727
Laredo | TX | 780 | 27.5306 | -99.4803 | 255 | 956
Jersey City | NJ | 073 | 40.7178 | -74.0431 | 292 | 201
Chandler | AZ | 852 | 33.3062 | -111.8413 | 275 | 480
Madison | WI | 537 | 43.0731 | -89.4012 | 269 | 608
Lubbock | TX | 794 | 33.5779 | -101.8552 | 257 | 806
Buffalo | NY | 142 | 42.8864 | -78.8784 | 278 | 716
Reno | NV | 895 | 39.5296 | -119.8138 | 264 | 775
Gilbert | AZ | 852 | 33.3528 | -111.7890 | 267 | 480
Boise | ID | 837 | 43.6150 | -116.2023 | 235 | 208
Richmond | VA | 232 | 37.5407 | -77.4360 | 226 | 804
Spokane | WA | 992 | 47.6588 | -117.4260 | 228 | 509
Des Moines | IA | 503 | 41.5868 | -93.6250 | 214 | 515
Birmingham | AL | 352 | 33.5186 | -86.8104 | 200 | 205
Rochester | NY | 146 | 43.1566 | -77.6088 | 211 | 585
Salt Lake City | UT | 841 | 40.7608 | -111.8910 | 200 | 801
Little Rock | AR | 722 | 34.7465 | -92.2896 | 202 | 501
Providence | RI | 029 | 41.8240 | -71.4128 | 190 | 401
Savannah | GA | 314 | 32.0809 | -81.0912 | 147 | 912
Columbia | SC | 292 | 34.0007 | -81.0348 | 136 | 803
Jackson | MS | 392 | 32.2988 | -90.1848 | 153 | 601
Sioux Falls | SD | 571 | 43.5446 | -96.7311 | 192 | 605
Fargo | ND | 581 | 46.8772 | -96.7898 | 125 | 701
Hartford | CT | 061 | 41.7658 | -72.6734 | 121 | 860
Billings | MT | 591 | 45.7833 | -108.5007 | 117 | 406
Manchester | NH | 031 | 42.9956 | -71.4548 | 115 | 603
Wilmington | DE | 198 | 39.7391 | -75.5398 | 71 | 302
Portland | ME | 041 | 43.6591 | -70.2568 | 68 | 207
Cheyenne | WY | 820 | 41.1400 | -104.8202 | 65 | 307
Charleston | WV | 253 | 38.3498 | -81.6326 | 48 | 304
Burlington | VT | 054 | 44.4759 | -73.2121 | 45 | 802
"""

CITIES = [
    City(name, state, zip3, float(lat), float(lon), int(pop), area)
    for name, state, zip3, lat, lon, pop, area in _parse_table(_CITIES, 7)
]

STREET_NAMES = [
    "Main",
    "Oak",
    "Maple",
    "Cedar",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "Pine",
    "Walnut",
    "Sunset",
    "Lincoln",
    "Jefferson",
    "Highland",
    "Ridge",
    "River",
    "Church",
    "Spring",
    "Franklin",
    "Chestnut",
    "Willow",
    "Meadow",
    "Center",
    "Market",
    "Madison",
    "College",
    "University",
    "Harbor",
    "Grand",
    "Forest",
    "Valley",
    "Mill",
    "Jackson",
    "Broad",
    "Front",
]
STREET_SUFFIXES = ["Street", "Avenue", "Boulevard", "Road", "Drive", "Parkway", "Lane", "Way"]

# Invented name parts for practices and systems; deliberately generic place imagery.
NAME_PREFIXES = [
    "Cedar Ridge",
    "Willow Creek",
    "Summit",
    "Lakeside",
    "Riverside",
    "Harbor View",
    "Prairie",
    "Granite Peak",
    "Maple Grove",
    "Oak Hollow",
    "Northside",
    "Southgate",
    "Eastview",
    "Westbrook",
    "Pinecrest",
    "Silver Lake",
    "Meadowbrook",
    "Stonebridge",
    "Bluewater",
    "Red Rock",
    "Clearwater",
    "Sunrise",
    "Evergreen",
    "Highland",
    "Brookside",
    "Fairview",
    "Golden Valley",
    "Ironwood",
    "Juniper",
    "Kestrel",
    "Larkspur",
    "Mesa Verde",
    "Northwind",
    "Orchard",
    "Parkside",
    "Quail Run",
]
SYSTEM_SUFFIXES = ["Health System", "Health", "Medical Center", "Healthcare", "Regional Health"]
PRACTICE_SUFFIXES = ["Associates", "Medical Group", "Clinic", "Partners", "Specialists", "Center"]


# ---------------------------------------------------------------- NPIs


def npi_check_digit(base9: str) -> str:
    """Luhn check digit over the card-issuer prefix 80840 plus the nine NPI digits."""
    total = 0
    for i, char in enumerate(reversed("80840" + base9)):
        digit = int(char)
        if i % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return str((10 - total % 10) % 10)


def make_npi(base9: str) -> str:
    return base9 + npi_check_digit(base9)


def is_valid_npi(value: str) -> bool:
    return len(value) == 10 and value.isdigit() and npi_check_digit(value[:9]) == value[9]


def npi_for_index(index: int, seed: int, leading: str = "1") -> str:
    """A unique, random-looking NPI for each index: an affine permutation of 0..10^8-1."""
    # The multiplier is odd and not a multiple of 5, so it is invertible modulo 10^8.
    multiplier = 40_503_569
    offset = (seed * 2_654_435_761) % 100_000_000
    return make_npi(f"{leading}{(index * multiplier + offset) % 100_000_000:08d}")


# ---------------------------------------------------------------- resource builders


def coding(system: str, code: str, display: str | None = None) -> dict:
    found = {"system": system, "code": code}
    if display:
        found["display"] = display
    return found


def concept(system: str, code: str, display: str | None = None) -> dict:
    return {"coding": [coding(system, code, display)]}


def ref(resource_type: str, logical_id: str, display: str | None = None) -> dict:
    found = {"reference": f"{resource_type}/{logical_id}"}
    if display:
        found["display"] = display
    return found


def phone(area_code: str, line: int, *, system: str = "phone") -> dict:
    """A fictional number: 555-0100..0199 is reserved for fiction in every US area code."""
    return {"system": system, "value": f"({area_code}) 555-01{line % 100:02d}", "use": "work"}


def address(line: str, city: str, state: str, postal_code: str) -> dict:
    return {
        "use": "work",
        "type": "both",
        "line": [line],
        "city": city,
        "state": state,
        "postalCode": postal_code,
        "country": "US",
    }


def fhir_endpoint(eid: str, name: str, url: str, org_id: str, status: str = "active") -> dict:
    return {
        "resourceType": "Endpoint",
        "id": eid,
        "status": status,
        "connectionType": coding(CONNECTION_SYSTEM, "hl7-fhir-rest", "HL7 FHIR"),
        "name": name,
        "managingOrganization": ref("Organization", org_id),
        "payloadType": [concept(PAYLOAD_SYSTEM, "any", "Any")],
        "payloadMimeType": ["application/fhir+json"],
        "address": url,
    }


def direct_endpoint(eid: str, name: str, mailbox: str, org_id: str, status: str = "active") -> dict:
    return {
        "resourceType": "Endpoint",
        "id": eid,
        "status": status,
        "connectionType": coding(CONNECTION_SYSTEM, "direct-project", "Direct Project"),
        "name": name,
        "managingOrganization": ref("Organization", org_id),
        "payloadType": [concept(PAYLOAD_SYSTEM, "any", "Any")],
        "payloadMimeType": ["application/xml", "application/pdf"],
        "address": f"mailto:{mailbox}",
    }


def organization(
    oid: str,
    name: str,
    *,
    npi: str,
    type_code: str,
    addr: dict,
    telecom: list,
    endpoints=(),
    part_of: str | None = None,
    active: bool = True,
    alias: list[str] | None = None,
) -> dict:
    type_display = {"prov": "Healthcare Provider", "dept": "Hospital Department"}.get(type_code)
    content = {
        "resourceType": "Organization",
        "id": oid,
        "identifier": [{"use": "official", "system": NPI_SYSTEM, "value": npi}],
        "active": active,
        "type": [concept(ORG_TYPE_SYSTEM, type_code, type_display)],
        "name": name,
        "alias": alias,
        "telecom": telecom,
        "address": [addr],
        "partOf": ref("Organization", part_of) if part_of else None,
        "endpoint": [ref("Endpoint", e) for e in endpoints] or None,
    }
    return _without_empty(content)


def location(
    lid: str,
    name: str,
    *,
    addr: dict,
    latitude: float,
    longitude: float,
    org_id: str,
    type_code: str,
    type_display: str,
    physical: str,
    telecom: list | None = None,
    part_of: str | None = None,
    status: str = "active",
    endpoints=(),
    description: str | None = None,
) -> dict:
    content = {
        "resourceType": "Location",
        "id": lid,
        "status": status,
        "name": name,
        "description": description,
        "mode": "instance",
        "type": [concept(ROLE_CODE_SYSTEM, type_code, type_display)],
        "telecom": telecom,
        "address": addr,
        "physicalType": concept(PHYSICAL_TYPE_SYSTEM, physical, PHYSICAL_TYPE_DISPLAY[physical]),
        "position": {"longitude": round(longitude, 6), "latitude": round(latitude, 6)},
        "managingOrganization": ref("Organization", org_id),
        "partOf": ref("Location", part_of) if part_of else None,
        "endpoint": [ref("Endpoint", e) for e in endpoints] or None,
    }
    return _without_empty(content)


PHYSICAL_TYPE_DISPLAY = {
    "si": "Site",
    "bu": "Building",
    "wi": "Wing",
    "lvl": "Level",
    "jdn": "Jurisdiction",
}

LOCATION_TYPES = {
    "HOSP": "Hospital",
    "ER": "Emergency room",
    "OF": "Outpatient facility",
    "HU": "Hospital unit",
    "PC": "primary care clinic",
    "PEDC": "pediatrics clinic",
    "PHARM": "Pharmacy",
}


def practitioner(
    pid: str,
    *,
    npi: str,
    family: str,
    given: list[str],
    gender: str,
    degree: str,
    telecom: list,
    active: bool = True,
    prefix: str | None = None,
    license_state: str | None = None,
) -> dict:
    name = {"use": "official", "family": family, "given": given}
    if prefix:
        name["prefix"] = [prefix]
    name["suffix"] = [degree]
    qualification = {
        "code": {
            "coding": [coding(DEGREE_SYSTEM, degree, DEGREE_DISPLAY[degree])],
            "text": DEGREE_DISPLAY[degree],
        },
    }
    if license_state:
        qualification["issuer"] = {"display": f"{license_state} state licensing board"}
    content = {
        "resourceType": "Practitioner",
        "id": pid,
        "identifier": [{"use": "official", "system": NPI_SYSTEM, "value": npi}],
        "active": active,
        "name": [name],
        "telecom": telecom,
        "gender": gender,
        "qualification": [qualification],
    }
    return content


def practitioner_role(
    rid: str,
    *,
    practitioner_id: str,
    practitioner_name: str,
    org_id: str,
    location_ids: list[str],
    specialty: Specialty,
    telecom: list,
    endpoints=(),
    active: bool = True,
    network_ids=(),
    service_ids=(),
) -> dict:
    content = {
        "resourceType": "PractitionerRole",
        "id": rid,
        # Plan-Net network-reference: the networks in which this role is offered.
        "extension": [
            extension_reference(NETWORK_REFERENCE_URL, "Organization", n) for n in network_ids
        ],
        "active": active,
        "practitioner": ref("Practitioner", practitioner_id, practitioner_name),
        "organization": ref("Organization", org_id),
        "code": [concept(ROLE_SYSTEM, specialty.role, ROLE_DISPLAY[specialty.role])],
        "specialty": [concept(NUCC_SYSTEM, specialty.code, specialty.display)],
        "location": [ref("Location", lid) for lid in location_ids] or None,
        "healthcareService": [ref("HealthcareService", s) for s in service_ids],
        "telecom": telecom,
        "endpoint": [ref("Endpoint", e) for e in endpoints] or None,
    }
    return _without_empty(content)


def profiled(kind: str) -> dict:
    """`meta` claiming a Plan-Net profile; the builders below fill what that profile requires."""
    return {"profile": [PLAN_NET_PROFILE[kind]]}


def extension_reference(url: str, resource_type: str, logical_id: str) -> dict:
    return {"url": url, "valueReference": ref(resource_type, logical_id)}


def payer_organization(oid: str, name: str, *, naic: str, addr: dict, telecom: list) -> dict:
    """A health plan company (Plan-Net Organization, type `payer`)."""
    content = {
        "resourceType": "Organization",
        "id": oid,
        "meta": profiled("Organization"),
        "identifier": [{"use": "official", "system": NAIC_SYSTEM, "value": naic}],
        "active": True,
        "type": [concept(PLAN_NET_ORG_TYPE, "payer", "Payer")],
        "name": name,
        "telecom": telecom,
        "address": [addr],
    }
    return content


def network(nid: str, name: str, *, payer_id: str, area_ids: list[str]) -> dict:
    """A provider network (Plan-Net Network: active, type `ntwk`, partOf its payer, no telecom)."""
    return _without_empty(
        {
            "resourceType": "Organization",
            "id": nid,
            "meta": profiled("Network"),
            "extension": [
                extension_reference(LOCATION_REFERENCE_URL, "Location", a) for a in area_ids
            ],
            "active": True,
            "type": [concept(PLAN_NET_ORG_TYPE, "ntwk", "Network")],
            "name": name,
            "partOf": ref("Organization", payer_id),
        }
    )


def area_location(lid: str, state: str) -> dict:
    """A state as a coverage area (Plan-Net Location; it forbids `mode`)."""
    return {
        "resourceType": "Location",
        "id": lid,
        "meta": profiled("Location"),
        "status": "active",
        "name": f"State of {state} service area",
        "physicalType": concept(PHYSICAL_TYPE_SYSTEM, "jdn", PHYSICAL_TYPE_DISPLAY["jdn"]),
        "address": {"state": state, "country": "US"},
    }


def insurance_plan(
    iid: str,
    name: str,
    *,
    product: tuple[str, str],
    payer_id: str,
    network_ids: list[str],
    area_ids: list[str],
    plan_types: list[tuple[str, str]],
) -> dict:
    """A Plan-Net InsurancePlan (an insurance product and its plans)."""
    return {
        "resourceType": "InsurancePlan",
        "id": iid,
        "meta": profiled("InsurancePlan"),
        "status": "active",
        "type": [concept(PRODUCT_TYPE_SYSTEM, *product)],
        "name": name,
        "ownedBy": ref("Organization", payer_id),
        "administeredBy": ref("Organization", payer_id),
        "coverageArea": [ref("Location", a) for a in area_ids],
        "network": [ref("Organization", n) for n in network_ids],
        # Plan-Net: plan types are distinct within a product.
        "plan": [{"type": concept(PLAN_TYPE_SYSTEM, *t)} for t in plan_types],
    }


def delivery_method(modalities: list[str] | None) -> dict:
    """Plan-Net delivery-method extension: physical, or virtual with its modalities."""
    if modalities is None:
        parts = [
            {
                "url": "type",
                "valueCodeableConcept": concept(DELIVERY_METHOD_SYSTEM, "physical", "Physical"),
            }
        ]
    else:
        parts = [
            {
                "url": "type",
                "valueCodeableConcept": concept(DELIVERY_METHOD_SYSTEM, "virtual", "Virtual"),
            }
        ]
        parts += [
            {
                "url": "virtualModalities",
                "valueCodeableConcept": concept(VIRTUAL_MODALITY_SYSTEM, m),
            }
            for m in modalities
        ]
    return {"url": DELIVERY_METHOD_URL, "extension": parts}


def healthcare_service(
    sid: str,
    name: str,
    *,
    org_id: str,
    location_id: str,
    category: str,
    service_type: str | None,
    specialties: list[Specialty],
    virtual: list[str] | None,
    telecom: list,
) -> dict:
    """A Plan-Net HealthcareService offered by an organization at one of its locations."""
    methods = [delivery_method(None)] + ([delivery_method(virtual)] if virtual else [])
    content = {
        "resourceType": "HealthcareService",
        "id": sid,
        "meta": profiled("HealthcareService"),
        "extension": methods,
        "active": True,
        "providedBy": ref("Organization", org_id),
        "category": [
            concept(SERVICE_CATEGORY_SYSTEM, category, SERVICE_CATEGORY_DISPLAY[category])
        ],
        "type": [concept(SERVICE_TYPE_SYSTEM, service_type, SERVICE_TYPE_DISPLAY[service_type])]
        if service_type
        else None,
        "specialty": [concept(NUCC_SYSTEM, s.code, s.display) for s in specialties],
        "location": [ref("Location", location_id)],
        "name": name,
        "telecom": telecom,
    }
    return _without_empty(content)


def organization_affiliation(
    aid: str,
    *,
    participating_id: str,
    primary_id: str | None,
    network_ids: list[str],
    role: str,
    specialties: list[Specialty],
    location_ids: list[str],
    service_ids: list[str],
) -> dict:
    """A Plan-Net OrganizationAffiliation: a provider organization's part in networks."""
    content = {
        "resourceType": "OrganizationAffiliation",
        "id": aid,
        "meta": profiled("OrganizationAffiliation"),
        "active": True,
        "organization": ref("Organization", primary_id) if primary_id else None,
        "participatingOrganization": ref("Organization", participating_id),
        "network": [ref("Organization", n) for n in network_ids],
        "code": [concept(PLAN_NET_AFFILIATION_ROLE, role)],
        "specialty": [concept(NUCC_SYSTEM, s.code, s.display) for s in specialties],
        "location": [ref("Location", lid) for lid in location_ids],
        "healthcareService": [ref("HealthcareService", sid) for sid in service_ids],
    }
    return _without_empty(content)


def _without_empty(content: dict) -> dict:
    return {k: v for k, v in content.items() if v not in (None, [], {})}


def display_name(given: list[str], family: str, degree: str) -> str:
    return f"{' '.join(given)} {family}, {degree}"


# Letters that NFKD does not split into a base letter plus an accent.
_NON_DECOMPOSING = str.maketrans({"ł": "l", "ø": "o", "ß": "ss", "æ": "ae", "đ": "d"})


def mailbox_name(given: str, family: str) -> str:
    """An ASCII local part for a Direct address, e.g. `jose.garcia-lopez`."""
    text = f"{given}.{family}".lower().replace(" ", "").translate(_NON_DECOMPOSING)
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded if c.isalnum() or c in ".-")


# ---------------------------------------------------------------- synthetic directory generator

BLOCK = 1000  # practitioners per random stream: output depends on the seed only, not batch sizes
ROLE_COUNTS = Weighted([1, 2, 3], [70, 22, 8])
CITY_CHOICE = Weighted(CITIES, [c.population for c in CITIES])
SPECIALTY_CHOICE = Weighted(SPECIALTIES, [s.weight for s in SPECIALTIES])
SURNAME_CHOICE = Weighted(*zip(*SURNAMES, strict=True))
GIVEN_CHOICE = {
    "male": Weighted(*zip(*MALE_NAMES, strict=True)),
    "female": Weighted(*zip(*FEMALE_NAMES, strict=True)),
}
PRACTITIONERS_PER_LOCATION = 25
MULTI_SPECIALTY_SIZE = 40  # expected practitioners above which an org takes every specialty
STATES = sorted({c.state for c in CITIES})

# Invented health plan names (no real insurer is meant).
PAYER_NAMES = [
    "Keystone Valley",
    "Bright Harbor",
    "Prairie Shield",
    "Coastline",
    "Trillium Ridge",
    "Harvest Plains",
    "Silver Birch",
    "Open Range",
    "Lantern Bay",
    "Copper Canyon",
    "Tall Pines",
    "Morning Star",
]
ORGANIZATIONS_PER_PAYER = 2000
MAX_PAYERS = len(PAYER_NAMES)
# Each payer runs a broad and a narrow network; a practice in a payer's area joins each with
# this probability.
NETWORK_TIERS = (("std", "Standard Network", 0.5), ("prem", "Preferred Network", 0.2))
# Products per payer: id suffix, Plan-Net product type, networks (tiers), plan types.
PRODUCTS = (
    (
        "ppo",
        ("commppo", "Commercial PPO"),
        ("std", "prem"),
        (("gold", "Gold-QHP"), ("silver", "Silver-QHP")),
    ),
    ("hmo", ("commhmo", "Commercial HMO"), ("prem",), (("bronze", "Bronze-QHP"),)),
)
VIRTUAL_MODALITIES = ["phone", "video", "web", "app"]
MAX_AFFILIATION_LINKS = 10  # locations / services listed on one affiliation


@dataclass(frozen=True)
class Site:
    """One place a role can point at: the (sub-)organization and its location."""

    org_id: str
    location_id: str
    city: City
    service_id: str


@dataclass(frozen=True)
class OrgSlot:
    org_id: str
    sites: tuple[Site, ...]
    endpoint_ids: tuple[str, ...]
    domain: str
    network_ids: tuple[str, ...] = ()


def payer_count(organizations: int) -> int:
    return max(2, min(MAX_PAYERS, organizations // ORGANIZATIONS_PER_PAYER))


class DirectoryGenerator:
    """Deterministic synthetic directory; yields groups of (type, content) that load together.

    Organizations are kept in memory (one small slot each); practitioners are produced block by
    block, so memory does not grow with the number of practitioners.
    """

    def __init__(
        self, practitioners: int, organizations: int, seed: int = 1, *, link_services=True
    ):
        self.practitioners = practitioners
        self.organizations = max(1, organizations)
        self.seed = seed
        self.tag = f"g{seed}"
        self.payers = payer_count(self.organizations)
        # Roles name their site's HealthcareService only where that type can be stored.
        self.link_services = link_services
        self.slots: list[OrgSlot] = []
        self.by_specialty: dict[str, Weighted] = {}
        self.networks_by_state: dict[str, list[tuple[str, float]]] = {}
        self._systems_by_city: dict[tuple[str, str], str] = {}
        self._org_npis = 0

    @property
    def first_id(self) -> tuple[str, str]:
        return "Organization", f"{self.tag}-org-0"

    # ---------------------------------------------------------- payers and networks

    def payer_groups(self):
        """Coverage areas (one Location per state), then each payer with networks and plans."""
        rng = random.Random(f"{self.seed}:payers")  # noqa: S311 - reproducible fake data
        areas = {state: f"{self.tag}-area-{state}" for state in STATES}
        yield [("Location", area_location(lid, state)) for state, lid in areas.items()]
        national = max(1, self.payers // 3)
        for index in range(self.payers):
            yield self._payer(rng, index, areas, index < national)

    def _payer(self, rng, index: int, areas: dict[str, str], national: bool):
        home = CITY_CHOICE.pick(rng)
        states = (
            STATES if national else sorted({home.state, *rng.sample(STATES, rng.randint(0, 3))})
        )
        area_ids = [areas[s] for s in states]
        payer_id = f"{self.tag}-payer-{index}"
        name = f"{PAYER_NAMES[index]} Health Plan"
        naic = f"{(self.seed * 101 + index) % 90000 + 10000:05d}"
        group = [
            (
                "Organization",
                payer_organization(
                    payer_id,
                    name,
                    naic=naic,
                    addr=self._street_address(rng, home),
                    telecom=[phone(home.area_code, index)],
                ),
            )
        ]
        tiers = {}
        for tier, label, joins in NETWORK_TIERS:
            tiers[tier] = f"{self.tag}-net-{index}-{tier}"
            group.append(
                (
                    "Organization",
                    network(tiers[tier], f"{name} {label}", payer_id=payer_id, area_ids=area_ids),
                )
            )
            for state in states:
                self.networks_by_state.setdefault(state, []).append((tiers[tier], joins))
        for suffix, product, product_tiers, plan_types in PRODUCTS:
            plan = insurance_plan(
                f"{self.tag}-plan-{index}-{suffix}",
                f"{name} {suffix.upper()}",
                product=product,
                payer_id=payer_id,
                network_ids=[tiers[t] for t in product_tiers],
                area_ids=area_ids,
                plan_types=list(plan_types),
            )
            group.append(("InsurancePlan", plan))
        return group

    def _join_networks(self, rng, city: City) -> tuple[str, ...]:
        return tuple(
            nid for nid, joins in self.networks_by_state.get(city.state, ()) if rng.random() < joins
        )

    # ---------------------------------------------------------- organizations

    def organization_groups(self):
        """Payers and networks first (practices join them), then provider organizations."""
        if not self.networks_by_state:
            yield from self.payer_groups()
        rng = random.Random(f"{self.seed}:organizations")  # noqa: S311 - reproducible fake data
        # Pareto sizes: a few large systems, a long tail of small practices.
        sizes = [rng.paretovariate(1.2) for _ in range(self.organizations)]
        scale = self.practitioners / sum(sizes)
        candidates: dict[str, tuple[list, list]] = {s.code: ([], []) for s in SPECIALTIES}
        for index, size in enumerate(sizes):
            expected = size * scale
            focus = SPECIALTY_CHOICE.pick(rng)
            group, slot = self._organization(rng, index, expected, focus)
            self.slots.append(slot)
            codes = SPECIALTY_BY_CODE if expected >= MULTI_SPECIALTY_SIZE else [focus.code]
            for code in codes:
                candidates[code][0].append(index)
                candidates[code][1].append(size)
            yield group
        self._index_specialties(candidates, sizes)

    def _index_specialties(self, candidates, sizes):
        # A specialty nobody practices alone still needs somewhere to work: the largest orgs.
        largest = sorted(range(len(sizes)), key=sizes.__getitem__)[-3:]
        for code, (indexes, weights) in candidates.items():
            if not indexes:
                indexes, weights = largest, [sizes[i] for i in largest]
            self.by_specialty[code] = Weighted(indexes, weights)

    def _organization(self, rng, index: int, expected: float, focus: Specialty):
        city = CITY_CHOICE.pick(rng)
        big = expected >= MULTI_SPECIALTY_SIZE
        prefix = rng.choice(NAME_PREFIXES)
        if big:
            name = f"{prefix} {rng.choice(SYSTEM_SUFFIXES)}"
        else:
            name = f"{prefix} {focus.clinic} {rng.choice(PRACTICE_SUFFIXES)}"
        org_id = f"{self.tag}-org-{index}"
        domain = f"{prefix.lower().replace(' ', '')}{index}.example"
        endpoints = self._org_endpoints(rng, index, name, org_id, domain, big)
        endpoint_ids = tuple(e["id"] for e in endpoints)
        top = organization(
            org_id,
            name,
            npi=self._next_org_npi(),
            type_code="prov",
            addr=self._street_address(rng, city),
            telecom=[phone(city.area_code, index)],
            endpoints=endpoint_ids,
            active=rng.random() > 0.02,
        )
        group = [("Organization", top), *(("Endpoint", e) for e in endpoints)]
        count = max(1, min(60, round(expected / PRACTITIONERS_PER_LOCATION)))
        sites = []
        for k in range(count):
            site_city = city if k == 0 or rng.random() < 0.7 else CITY_CHOICE.pick(rng)
            site_org = org_id
            if big and k > 0:
                # Large systems run each campus as its own organization under the parent.
                site_org = f"{org_id}-{k}"
                group.append(
                    (
                        "Organization",
                        organization(
                            site_org,
                            f"{name} - {site_city.name}",
                            npi=self._next_org_npi(),
                            type_code="prov",
                            addr=self._street_address(rng, site_city),
                            telecom=[phone(site_city.area_code, index + k)],
                            part_of=org_id,
                        ),
                    )
                )
            loc = self._location(
                rng, f"{self.tag}-loc-{index}-{k}", name, site_org, site_city, big and k == 0
            )
            group.append(("Location", loc))
            sites.append(Site(site_org, loc["id"], site_city, f"{self.tag}-hs-{index}-{k}"))
        # Plan-Net content draws on its own stream, so the resources above stay as they were.
        extra = random.Random(f"{self.seed}:plan-net:{index}")  # noqa: S311 - reproducible
        networks = self._join_networks(extra, city)
        specialties = self._offered(extra, focus, big)
        group += self._services(extra, name, sites, specialties, big)
        primary = None if big else self._systems_by_city.get((city.name, city.state))
        if big:
            self._systems_by_city.setdefault((city.name, city.state), org_id)
        if networks or primary:
            role = "hospital" if big else SERVICE_KIND.get(focus.code, DEFAULT_SERVICE_KIND)[2]
            affiliation = organization_affiliation(
                f"{self.tag}-affil-{index}",
                participating_id=org_id,
                primary_id=primary,
                network_ids=list(networks),
                role=role,
                specialties=specialties,
                location_ids=[s.location_id for s in sites[:MAX_AFFILIATION_LINKS]],
                service_ids=[s.service_id for s in sites[:MAX_AFFILIATION_LINKS]],
            )
            group.append(("OrganizationAffiliation", affiliation))
        return group, OrgSlot(org_id, tuple(sites), endpoint_ids, domain, networks)

    @staticmethod
    def _offered(rng, focus: Specialty, big: bool) -> list[Specialty]:
        """The focus specialty; a large system lists a few more on its services."""
        found = [focus]
        for _ in range(4 if big else 0):
            other = SPECIALTY_CHOICE.pick(rng)
            if other not in found:
                found.append(other)
        return found

    def _services(self, rng, name, sites, specialties, big) -> list[tuple[str, dict]]:
        """One HealthcareService per site: what is offered there, how, and by whom."""
        category, service_type, _ = SERVICE_KIND.get(specialties[0].code, DEFAULT_SERVICE_KIND)
        found = []
        for k, site in enumerate(sites):
            if big:
                category, service_type = ("hosp" if k == 0 else "outpat"), None
            virtual = None
            if rng.random() < 0.25:
                virtual = sorted(rng.sample(VIRTUAL_MODALITIES, rng.randint(1, 2)))
            service = healthcare_service(
                site.service_id,
                f"{name} - {site.city.name} services",
                org_id=site.org_id,
                location_id=site.location_id,
                category=category,
                service_type=service_type,
                specialties=specialties,
                virtual=virtual,
                telecom=[phone(site.city.area_code, rng.randrange(100))],
            )
            found.append(("HealthcareService", service))
        return found

    def _org_endpoints(self, rng, index, name, org_id, domain, big) -> list[dict]:
        status = "active" if rng.random() > 0.03 else rng.choice(["off", "suspended"])
        found = [
            direct_endpoint(
                f"{self.tag}-ep-{index}-direct",
                f"{name} Direct mailbox",
                f"referrals@direct.{domain}",
                org_id,
                status,
            )
        ]
        if big or rng.random() < 0.4:
            found.append(
                fhir_endpoint(
                    f"{self.tag}-ep-{index}-fhir",
                    f"{name} FHIR API",
                    f"https://fhir.{domain}/r4",
                    org_id,
                    status,
                )
            )
        return found

    def _location(self, rng, lid, name, org_id, city: City, hospital: bool) -> dict:
        type_code = "HOSP" if hospital else "OF"
        return location(
            lid,
            f"{name} - {city.name}" if not hospital else name,
            addr=self._street_address(rng, city),
            latitude=city.latitude + rng.gauss(0, 0.04),
            longitude=city.longitude + rng.gauss(0, 0.05),
            org_id=org_id,
            type_code=type_code,
            type_display=LOCATION_TYPES[type_code],
            physical="bu",
            telecom=[phone(city.area_code, rng.randrange(100))],
        )

    def _street_address(self, rng, city: City) -> dict:
        street = (
            f"{rng.randrange(1, 9900)} {rng.choice(STREET_NAMES)} {rng.choice(STREET_SUFFIXES)}"
        )
        return address(street, city.name, city.state, f"{city.zip3}{rng.randrange(100):02d}")

    def _next_org_npi(self) -> str:
        self._org_npis += 1
        return npi_for_index(self._org_npis, self.seed, leading="2")

    # ---------------------------------------------------------- practitioners

    def practitioner_groups(self, blocks=None):
        """Groups for every practitioner block (or just `blocks`), in block order."""
        if not self.slots:
            for _ in self.organization_groups():
                pass
        count = -(-self.practitioners // BLOCK)
        for block in blocks if blocks is not None else range(count):
            yield from self.block_groups(block)

    def block_groups(self, block: int):
        rng = random.Random(f"{self.seed}:block:{block}")  # noqa: S311 - reproducible fake data
        for index in range(block * BLOCK, min(self.practitioners, (block + 1) * BLOCK)):
            yield self._practitioner(rng, index)

    def _practitioner(self, rng, index: int) -> list[tuple[str, dict]]:
        npi = npi_for_index(index, self.seed)
        pid = f"{self.tag}-prac-{npi}"
        gender = "female" if rng.random() < 0.45 else "male"
        given = GIVEN_CHOICE[gender].pick(rng)
        family = SURNAME_CHOICE.pick(rng)
        if rng.random() < 0.03:
            family = f"{family}-{SURNAME_CHOICE.pick(rng)}"
        specialty = SPECIALTY_CHOICE.pick(rng)
        degree = "DO" if specialty.degree == "MD" and rng.random() < 0.11 else specialty.degree
        active = rng.random() > 0.03
        places = self._places(rng, specialty)
        home = places[0][1]
        group = [
            (
                "Practitioner",
                practitioner(
                    pid,
                    npi=npi,
                    family=family,
                    given=[given],
                    gender=gender,
                    degree=degree,
                    telecom=[phone(home.city.area_code, rng.randrange(100))],
                    active=active,
                    prefix="Dr." if specialty.role == "doctor" and degree != "PA" else None,
                    license_state=home.city.state,
                ),
            )
        ]
        personal = []
        if rng.random() < 0.1:
            slot = places[0][0]
            mailbox = f"{mailbox_name(given, family)}{index}@direct.{slot.domain}"
            personal = [f"{self.tag}-ep-{npi}"]
            group.append(
                (
                    "Endpoint",
                    direct_endpoint(
                        personal[0], f"Direct mailbox of {given} {family}", mailbox, slot.org_id
                    ),
                )
            )
        name = display_name([given], family, degree)
        for n, (slot, site) in enumerate(places, start=1):
            group.append(
                (
                    "PractitionerRole",
                    practitioner_role(
                        f"{self.tag}-role-{npi}-{n}",
                        practitioner_id=pid,
                        practitioner_name=name,
                        org_id=site.org_id,
                        location_ids=[site.location_id],
                        specialty=specialty,
                        telecom=[phone(site.city.area_code, rng.randrange(100))],
                        endpoints=[*personal, *slot.endpoint_ids],
                        active=active,
                        network_ids=slot.network_ids,
                        service_ids=[site.service_id] if self.link_services else (),
                    ),
                )
            )
        return group

    def _places(self, rng, specialty: Specialty) -> list[tuple[OrgSlot, Site]]:
        """1-3 distinct sites; extra roles are mostly other sites of the same organization."""
        orgs = self.by_specialty[specialty.code]
        slot = self.slots[orgs.pick(rng)]
        places = [(slot, rng.choice(slot.sites))]
        for _ in range(ROLE_COUNTS.pick(rng) - 1):
            other = slot if rng.random() < 0.6 else self.slots[orgs.pick(rng)]
            place = (other, rng.choice(other.sites))
            if place[1] not in (site for _, site in places):
                places.append(place)
        return places
