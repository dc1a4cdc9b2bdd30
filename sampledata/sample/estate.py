"""The sample's estate: fictional health systems, sites, departments and independent practices."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEED = 20250115
PRACTITIONERS = 150


PRIMARY = ["207R00000X", "207Q00000X", "363L00000X"]
MEDICINE = ["207R00000X", "207RG0100X", "207RP1001X", "207RN0300X", "207RI0200X", "207RH0003X"]
SURGERY = ["208600000X", "207L00000X", "2085R0202X"]


@dataclass
class Dept:
    key: str
    name: str
    specialties: list[str]
    wing: str | None = None  # a Location wing inside the hospital building, if the dept has one
    wing_type: str = "HU"


@dataclass
class Site:
    key: str
    name: str
    street: str
    city: str
    state: str
    postal_code: str
    latitude: float
    longitude: float
    area_code: str
    specialties: list[str] = field(default_factory=list)
    depts: list[Dept] = field(default_factory=list)
    hospital: bool = False
    status: str = "active"


@dataclass
class System:
    key: str
    name: str
    domain: str
    hq: Site
    sites: list[Site]
    alias: str | None = None
    independent: bool = False
    active: bool = True


def _hospital(
    key: str,
    name: str,
    street: str,
    city: str,
    state: str,
    postal: str,
    lat: float,
    lon: float,
    area: str,
    depts: list[Dept],
) -> Site:
    return Site(key, name, street, city, state, postal, lat, lon, area, depts=depts, hospital=True)


def _clinic(
    key: str,
    name: str,
    street: str,
    city: str,
    state: str,
    postal: str,
    lat: float,
    lon: float,
    area: str,
    specialties: list[str],
    **kw: Any,
) -> Site:
    return Site(key, name, street, city, state, postal, lat, lon, area, specialties, **kw)


SYSTEMS = [
    System(
        "riverbend",
        "Riverbend Health System",
        "riverbend.example",
        Site(
            "riverbend",
            "Riverbend Health System",
            "400 Riverbend Parkway",
            "Columbus",
            "OH",
            "43215",
            39.9650,
            -83.0050,
            "614",
        ),
        [
            _hospital(
                "riverbend-mc",
                "Riverbend Medical Center",
                "1200 Riverbend Parkway",
                "Columbus",
                "OH",
                "43215",
                39.9785,
                -83.0159,
                "614",
                [
                    Dept(
                        "ed",
                        "Riverbend Emergency Department",
                        ["207P00000X"],
                        "Emergency Department",
                        "ER",
                    ),
                    Dept(
                        "heart",
                        "Riverbend Heart & Vascular Institute",
                        ["207RC0000X"],
                        "North Tower",
                    ),
                    Dept(
                        "peds",
                        "Riverbend Department of Pediatrics",
                        ["208000000X"],
                        "Children's Pavilion",
                    ),
                    Dept(
                        "ortho",
                        "Riverbend Orthopaedics & Sports Medicine",
                        ["207X00000X", "208100000X"],
                    ),
                    Dept("med", "Riverbend Department of Medicine", MEDICINE),
                    Dept("surg", "Riverbend Surgical Services", SURGERY, "Surgical Wing"),
                ],
            ),
            _hospital(
                "riverbend-westerville",
                "Riverbend Westerville Hospital",
                "85 Alum Creek Way",
                "Westerville",
                "OH",
                "43081",
                40.1262,
                -82.9291,
                "614",
                [
                    Dept(
                        "ed",
                        "Riverbend Westerville Emergency",
                        ["207P00000X"],
                        "Emergency Department",
                        "ER",
                    ),
                    Dept(
                        "womens",
                        "Riverbend Westerville Women's Health",
                        ["207V00000X"],
                        "Birthing Center",
                    ),
                ],
            ),
            _clinic(
                "riverbend-dublin",
                "Riverbend Primary Care - Dublin",
                "6200 Emerald Way",
                "Dublin",
                "OH",
                "43017",
                40.0992,
                -83.1141,
                "614",
                PRIMARY,
            ),
            _clinic(
                "riverbend-grandview",
                "Riverbend Pediatrics - Grandview",
                "1450 Goodale Terrace",
                "Grandview Heights",
                "OH",
                "43212",
                39.9798,
                -83.0407,
                "614",
                ["208000000X", "363L00000X"],
            ),
            _clinic(
                "riverbend-worthington",
                "Riverbend Dermatology & Skin Care",
                "700 High Meadow Drive",
                "Worthington",
                "OH",
                "43085",
                40.0931,
                -83.0180,
                "614",
                ["207N00000X"],
            ),
        ],
        alias="RHS",
    ),
    System(
        "cascadia",
        "Cascadia Valley Health",
        "cascadiavalley.example",
        Site(
            "cascadia",
            "Cascadia Valley Health",
            "2100 Fernhill Avenue",
            "Portland",
            "OR",
            "97210",
            45.5310,
            -122.6980,
            "503",
        ),
        [
            _hospital(
                "cascadia-mc",
                "Cascadia Valley Medical Center",
                "2300 Fernhill Avenue",
                "Portland",
                "OR",
                "97210",
                45.5300,
                -122.6950,
                "503",
                [
                    Dept(
                        "ed",
                        "Cascadia Valley Emergency Services",
                        ["207P00000X"],
                        "Emergency Department",
                        "ER",
                    ),
                    Dept(
                        "neuro",
                        "Cascadia Valley Neuroscience Institute",
                        ["2084N0400X"],
                        "West Wing",
                    ),
                    Dept("med", "Cascadia Valley Department of Medicine", MEDICINE),
                    Dept(
                        "psych",
                        "Cascadia Valley Behavioral Health",
                        ["2084P0800X"],
                        "Behavioral Health Unit",
                    ),
                ],
            ),
            _hospital(
                "cascadia-salem",
                "Cascadia Valley Salem Hospital",
                "950 Orchard Crest Road",
                "Salem",
                "OR",
                "97301",
                44.9429,
                -123.0351,
                "503",
                [
                    Dept(
                        "ed",
                        "Cascadia Valley Salem Emergency",
                        ["207P00000X"],
                        "Emergency Department",
                        "ER",
                    ),
                    Dept("surg", "Cascadia Valley Salem Surgery", SURGERY),
                ],
            ),
            _clinic(
                "cascadia-beaverton",
                "Cascadia Valley Clinic - Beaverton",
                "4800 Cedar Hills Loop",
                "Beaverton",
                "OR",
                "97005",
                45.4871,
                -122.8037,
                "503",
                [*PRIMARY, "207V00000X"],
            ),
            _clinic(
                "cascadia-vancouver",
                "Cascadia Valley Clinic - Vancouver",
                "310 Columbia Bend Road",
                "Vancouver",
                "WA",
                "98660",
                45.6387,
                -122.6615,
                "360",
                [*PRIMARY, "208000000X"],
            ),
            _clinic(
                "cascadia-gresham",
                "Cascadia Valley Eye & ENT",
                "1900 Mount Hood Vista",
                "Gresham",
                "OR",
                "97030",
                45.4981,
                -122.4310,
                "503",
                ["207W00000X", "207Y00000X"],
            ),
        ],
    ),
    System(
        "loneprairie",
        "Lone Prairie Health",
        "loneprairie.example",
        Site(
            "loneprairie",
            "Lone Prairie Health",
            "1600 Bluebonnet Trail",
            "Austin",
            "TX",
            "78705",
            30.2880,
            -97.7420,
            "512",
        ),
        [
            _hospital(
                "loneprairie-mc",
                "Lone Prairie Medical Center",
                "1700 Bluebonnet Trail",
                "Austin",
                "TX",
                "78705",
                30.2900,
                -97.7400,
                "512",
                [
                    Dept(
                        "ed",
                        "Lone Prairie Emergency Center",
                        ["207P00000X"],
                        "Emergency Department",
                        "ER",
                    ),
                    Dept("heart", "Lone Prairie Heart Center", ["207RC0000X"], "East Tower"),
                    Dept("cancer", "Lone Prairie Cancer Institute", ["207RH0003X", "207RX0202X"]),
                    Dept("med", "Lone Prairie Department of Medicine", MEDICINE),
                ],
            ),
            _hospital(
                "loneprairie-roundrock",
                "Lone Prairie Round Rock Hospital",
                "2450 Limestone Ridge Drive",
                "Round Rock",
                "TX",
                "78664",
                30.5083,
                -97.6789,
                "512",
                [
                    Dept(
                        "ed",
                        "Lone Prairie Round Rock Emergency",
                        ["207P00000X"],
                        "Emergency Department",
                        "ER",
                    ),
                    Dept(
                        "womens",
                        "Lone Prairie Women's & Children's",
                        ["207V00000X", "208000000X"],
                        "Women's Pavilion",
                    ),
                ],
            ),
            _clinic(
                "loneprairie-sanmarcos",
                "Lone Prairie Family Clinic - San Marcos",
                "515 Riverwalk Lane",
                "San Marcos",
                "TX",
                "78666",
                29.8833,
                -97.9414,
                "512",
                PRIMARY,
            ),
            _clinic(
                "loneprairie-georgetown",
                "Lone Prairie Family Clinic - Georgetown",
                "901 Live Oak Circle",
                "Georgetown",
                "TX",
                "78626",
                30.6333,
                -97.6770,
                "512",
                [*PRIMARY, "207RE0101X"],
            ),
            _clinic(
                "loneprairie-mind",
                "Lone Prairie Center for Mind & Mood",
                "2200 Barton Hollow Road",
                "Austin",
                "TX",
                "78704",
                30.2450,
                -97.7650,
                "512",
                ["2084P0800X"],
                status="suspended",
            ),
        ],
    ),
    System(
        "magnolia",
        "Magnolia Coast Health",
        "magnoliacoast.example",
        Site(
            "magnolia",
            "Magnolia Coast Health",
            "30 Live Oak Square",
            "Savannah",
            "GA",
            "31401",
            32.0790,
            -81.0930,
            "912",
        ),
        [
            _hospital(
                "magnolia-regional",
                "Magnolia Coast Regional Hospital",
                "4700 Marsh Harbor Drive",
                "Savannah",
                "GA",
                "31405",
                32.0500,
                -81.1000,
                "912",
                [
                    Dept(
                        "ed",
                        "Magnolia Coast Emergency Department",
                        ["207P00000X"],
                        "Emergency Department",
                        "ER",
                    ),
                    Dept(
                        "med",
                        "Magnolia Coast Hospital Medicine",
                        ["207R00000X", "207RP1001X", "207RN0300X"],
                    ),
                    Dept("ortho", "Magnolia Coast Bone & Joint", ["207X00000X"], "South Wing"),
                    Dept("surg", "Magnolia Coast Surgical Services", SURGERY),
                ],
            ),
            _clinic(
                "magnolia-pooler",
                "Magnolia Coast Primary Care - Pooler",
                "120 Pecan Grove Road",
                "Pooler",
                "GA",
                "31322",
                32.1155,
                -81.2471,
                "912",
                PRIMARY,
            ),
            _clinic(
                "magnolia-charleston",
                "Magnolia Coast Clinic - Charleston",
                "88 Palmetto Row",
                "Charleston",
                "SC",
                "29401",
                32.7765,
                -79.9311,
                "843",
                [*PRIMARY, "207RC0000X", "207N00000X"],
            ),
            _clinic(
                "magnolia-hiltonhead",
                "Magnolia Coast Clinic - Hilton Head",
                "15 Sea Pines Circle",
                "Hilton Head Island",
                "SC",
                "29926",
                32.2163,
                -80.7526,
                "843",
                ["207Q00000X", "207RR0500X"],
            ),
        ],
        alias="MCH",
    ),
]

INDEPENDENT = [
    System(
        "harborlight",
        "Harborlight Pediatrics",
        "harborlight.example",
        Site(
            "harborlight",
            "Harborlight Pediatrics",
            "45 Wharf View Street",
            "Portland",
            "ME",
            "04101",
            43.6591,
            -70.2568,
            "207",
            ["208000000X", "363L00000X"],
        ),
        [],
        independent=True,
    ),
    System(
        "desertbloom",
        "Desert Bloom Family Medicine",
        "desertbloom.example",
        Site(
            "desertbloom",
            "Desert Bloom Family Medicine",
            "2875 Saguaro Mesa Drive",
            "Tucson",
            "AZ",
            "85719",
            32.2450,
            -110.9450,
            "520",
            ["207Q00000X", "363L00000X"],
        ),
        [],
        independent=True,
    ),
    System(
        "greatlakes",
        "Great Lakes Cardiology Associates",
        "greatlakescardio.example",
        Site(
            "greatlakes",
            "Great Lakes Cardiology Associates",
            "610 Lakefront Terrace",
            "Milwaukee",
            "WI",
            "53202",
            43.0450,
            -87.9000,
            "414",
            ["207RC0000X"],
        ),
        [],
        independent=True,
    ),
    System(
        "oldmill",
        "Old Mill Family Practice",
        "oldmill.example",
        Site(
            "oldmill",
            "Old Mill Family Practice",
            "12 Millrace Lane",
            "Lexington",
            "KY",
            "40502",
            38.0200,
            -84.4900,
            "859",
            ["207Q00000X"],
            status="inactive",
        ),
        [],
        independent=True,
        active=False,
    ),
]

# Names that exercise accents, apostrophes, multi-part and hyphenated forms.
SPECIAL_NAMES = [
    (["José"], "Hernández", "male"),
    (["Zoë"], "Müller", "female"),
    (["Renée"], "Okafor-Bennett", "female"),
    (["François"], "Lefèvre", "male"),
    (["Siobhán"], "O'Brien", "female"),
    (["Björn"], "Lindqvist", "male"),
    (["Chloé"], "García-López", "female"),
    (["Lan"], "Nguyễn", "female"),
    (["Ana", "María"], "de la Cruz", "female"),
    (["Jürgen"], "Schäfer", "male"),
    (["Łukasz"], "Wójcik", "male"),
    (["Inés"], "Peña-Whitfield", "female"),
    (["Mohammed"], "Al-Sayed", "male"),
    (["Ngozi"], "Adeyemi-Clarke", "female"),
    (["Dmitri"], "Ivanov", "male"),
    (["Anaïs"], "Dubois", "female"),
]
