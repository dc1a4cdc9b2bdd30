"""What the security middleware established about a request, passed from check to check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest

from .client_ip import client_ip_address

if TYPE_CHECKING:
    from cryptography import x509

    from .models import ApiClient, ApiKey, TrustCommunity


@dataclass
class SecurityContext:
    """Filled in by the checks in order; read by later checks, the audit and the views."""

    remote_addr: str = ""  # the client's, as our trusted proxy forwarded it (client_ip.py)
    from_trusted_proxy: bool = False
    certificate: x509.Certificate | None = None
    certificate_fingerprint: str = ""  # SHA-256, lowercase hex
    certificate_subject: str = ""
    community: TrustCommunity | None = None
    client: ApiClient | None = None
    api_key: ApiKey | None = None
    key_prefix: str = ""
    token_claims: dict[str, Any] | None = None
    token_subject: str = ""
    token_issuer: str = ""
    granted_scopes: set[str] = field(default_factory=set)
    # The token's grants cut to the client's, worked out once per request by the API's decision.
    grants: set[tuple[str, str]] | None = None
    interaction: str = ""
    resource_type: str = ""
    resource_id: str = ""
    outcome: str = "ok"  # "ok" or the reason code of the refusal
    # The API's authorization decisions, e.g. "search-type needs Organization.s: allow".
    decisions: list[str] = field(default_factory=list)


def context_of(request: HttpRequest) -> SecurityContext:
    """The request's context, created on first use."""
    # DRF wraps the Django request; the context lives on the Django one, where middleware and the
    # audit see it too.
    django_request: HttpRequest = getattr(request, "_request", request)
    context = getattr(django_request, "security", None)
    if context is None:
        context = SecurityContext(remote_addr=client_ip_address(django_request) or "")
        django_request.security = context  # type: ignore[attr-defined]  # our per-request slot
    return context
