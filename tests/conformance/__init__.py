"""Conformance to the Plan-Net IG (issue 9), judged by an outside oracle.

The Plan-Net examples (and a few resources of our own) are stored through the API once; every
Plan-Net SearchParameter, declared chain, `_has`, `:iterate` include and `near` is then queried
with values derived from what the parameter's own FHIRPath expression selects (fhirpathpy), and
the answer must be exactly the resources the oracle selects under FHIR's matching rules.
"""
