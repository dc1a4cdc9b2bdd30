"""Places: US cities with populations and positions, street and organization names."""

from __future__ import annotations

from dataclasses import dataclass

from .weighted import _parse_table


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
