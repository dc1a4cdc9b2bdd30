"""The custom SearchParameter the tests add (an Organization `alias` over a plain path), shared by
the API, admin and worker tests; the fixture giving each test the built-in parameters only is
`fresh_custom_params` (tests/conftest.py)."""

ALIAS = {
    "resourceType": "SearchParameter",
    "url": "http://example.org/fhir/SearchParameter/organization-alias",
    "name": "OrganizationAlias",
    "status": "active",
    "description": "Organizations by an alias",
    "code": "alias",
    "base": ["Organization"],
    "type": "string",
    "expression": "Organization.alias",
}
