"""Check 'Spine headers' (NHS Spine profile, off by default): the Ssp-* headers of the proxy.

Behind the Spine Secure Proxy every call carries Ssp-TraceID (a UUID), Ssp-From (the caller's
ASID), Ssp-To (our ASID) and Ssp-InteractionID, which must name the interaction actually
requested. Interaction ids of this directory:

    urn:nhs:names:services:directory:<ResourceType>.<interaction>   type and instance level
    urn:nhs:names:services:directory:<interaction>                  system level

with <interaction> the FHIR code of fhirapi.routes, e.g.
`urn:nhs:names:services:directory:Organization.read`,
`urn:nhs:names:services:directory:Practitioner.search-type` (GET or POST _search),
`urn:nhs:names:services:directory:history-system`, `urn:nhs:names:services:directory:capabilities`;
a Bundle posted to the base is named by its type, `urn:nhs:names:services:directory:batch` or
`urn:nhs:names:services:directory:transaction`.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpRequest

from ..context import SecurityContext
from ..refusal import Refusal
from .base import CheckMiddleware

INTERACTION_PREFIX = "urn:nhs:names:services:directory:"
TRACE_ID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
ASID = re.compile(r"[0-9]{1,20}")


def expected_interaction_id(interaction: str, resource_type: str) -> str:
    """The Ssp-InteractionID naming this interaction; the API's decision point compares them."""
    if resource_type:
        return f"{INTERACTION_PREFIX}{resource_type}.{interaction}"
    return f"{INTERACTION_PREFIX}{interaction}"


class SpineHeadersMiddleware(CheckMiddleware):
    """Refuses "spine-headers" when the Spine profile is on and an Ssp-* header is wrong."""

    # The Spine proxy adds the headers to every call, the CapabilityStatement's included.

    def applies(self, request: HttpRequest) -> bool:
        return settings.SECURITY_SPINE_PROFILE and super().applies(request)

    def check(self, request: HttpRequest, context: SecurityContext) -> None:
        headers = request.headers
        our_asid = settings.SECURITY_SPINE_ASID
        if not (
            TRACE_ID.fullmatch(headers.get("Ssp-TraceID", ""))
            and ASID.fullmatch(headers.get("Ssp-From", ""))
            # Without a configured ASID of our own nothing can be addressed to us: fail closed.
            and our_asid
            and headers.get("Ssp-To", "") == our_asid
            # Present here; that it names the routed interaction is checked where the route is
            # known, at the API's authorization decision (fhirapi.authorization).
            and headers.get("Ssp-InteractionID", "")
        ):
            raise Refusal("spine-headers")
