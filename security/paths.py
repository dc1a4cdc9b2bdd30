"""Which requests the security checks apply to."""

from django.conf import settings

API_PREFIX = "/fhir"
# The CapabilityStatement describes the server, not directory data: it needs a trusted transport
# and certificate, but no key or token, so clients can discover how to authenticate.
METADATA_PATH = "/fhir/metadata"
# The OpenAPI document describes the same interactions for generic HTTP tooling: same treatment.
OPENAPI_PATH = "/fhir/openapi.json"
DISCOVERY_PATHS = (METADATA_PATH, OPENAPI_PATH)


def is_public(request) -> bool:
    return request.path_info in settings.SECURITY_PUBLIC_PATHS


def is_api(request) -> bool:
    path = request.path_info
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def is_metadata(request) -> bool:
    """The server's self-descriptions (CapabilityStatement, OpenAPI): transport checks only."""
    return request.path_info.rstrip("/") in DISCOVERY_PATHS
