"""The benchmark's query set, filled with values taken from the generated directory itself."""

from __future__ import annotations

from dataclasses import dataclass

NPI = "http://hl7.org/fhir/sid/us-npi"
SPECIALTY = "http://nucc.org/provider-taxonomy|207RC0000X"


@dataclass(frozen=True)
class Query:
    name: str
    path: str  # below /fhir/, with its query string
    method: str = "GET"


def sample_values(cursor) -> dict[str, str]:
    """One practitioner's id and NPI, a frequent family name and a city, from the data."""
    cursor.execute(
        "SELECT r.logical_id, t.code FROM directory_resource r JOIN directory_tokenindex t"
        " ON t.resource_id = r.id AND t.param = 'identifier' AND t.system = %s"
        " WHERE r.resource_type = 'Practitioner' AND NOT r.deleted ORDER BY r.id LIMIT 1",
        [NPI],
    )
    practitioner, npi = cursor.fetchone()
    return {
        "practitioner": practitioner,
        "npi": npi,
        "family": _most_common(cursor, "Practitioner", "family"),
        "city": _most_common(cursor, "Organization", "address-city"),
    }


def _most_common(cursor, resource_type: str, param: str) -> str:
    cursor.execute(
        "SELECT value FROM directory_stringindex WHERE resource_type = %s AND param = %s"
        " GROUP BY value ORDER BY count(*) DESC, value LIMIT 1",
        [resource_type, param],
    )
    return cursor.fetchone()[0]


def query_set(values: dict[str, str]) -> list[Query]:
    """The queries of the performance issue."""
    return [
        Query("read Practitioner/{id}", f"Practitioner/{values['practitioner']}"),
        Query("Practitioner?identifier=NPI", f"Practitioner?identifier={NPI}|{values['npi']}"),
        Query("Practitioner?family=common", f"Practitioner?family={values['family']}"),
        Query(
            "PractitionerRole?specialty&_include",
            f"PractitionerRole?specialty={SPECIALTY}&_include=PractitionerRole:practitioner",
        ),
        Query("Organization?address-city", f"Organization?address-city={values['city']}"),
        Query(
            "Practitioner?_lastUpdated (sync page)",
            "Practitioner?_lastUpdated=gt2000-01-01&_count=100",
        ),
        Query("POST Organization", "Organization", "POST"),
    ]


NEW_ORGANIZATION = '{"resourceType":"Organization","active":true,"name":"Benchmark Clinic"}'
