"""Which requests the security checks apply to."""

from django.conf import settings
from django.http import HttpRequest

API_PREFIX = "/fhir"
# The CapabilityStatement describes the server, not directory data: it needs a trusted transport
# and certificate, but no key or token, so clients can discover how to authenticate.
METADATA_PATH = "/fhir/metadata"
# The OpenAPI document describes the same interactions for generic HTTP tooling, and the SMART and
# UDAP discovery documents under the FHIR base describe the server too: same treatment.
OPENAPI_PATH = "/fhir/openapi.json"
DISCOVERY_PATHS = (
    METADATA_PATH,
    OPENAPI_PATH,
    "/fhir/.well-known/smart-configuration",
    "/fhir/.well-known/udap",
)
# The built-in authorization server's endpoints that clients authenticate to; audited like /fhir.
OAUTH_AUDITED_PATHS = ("/oauth/token", "/oauth/register")


def is_public(request: HttpRequest) -> bool:
    return request.path_info in settings.SECURITY_PUBLIC_PATHS


def is_api(request: HttpRequest) -> bool:
    path = request.path_info
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def is_metadata(request: HttpRequest) -> bool:
    """The server's self-descriptions (CapabilityStatement, OpenAPI, discovery): transport only."""
    return request.path_info.rstrip("/") in DISCOVERY_PATHS


def is_oauth(request: HttpRequest) -> bool:
    return request.path_info in OAUTH_AUDITED_PATHS
