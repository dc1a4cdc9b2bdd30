"""An Endpoint's certificate as the Validated Healthcare Directory digital certificate extension.

Stored shape (one extension per certificate, replaced when one of the same use is uploaded):

    {"url": DIGITAL_CERTIFICATE_URL, "extension": [
        {"url": "certificateStandard", "valueCoding": {"system": STANDARD_SYSTEM,
                                                        "code": "x.509v3"}},
        {"url": "use", "valueCoding": {"system": USE_SYSTEM, "code": "auth|signing|encryption"}},
        {"url": "certificate", "valueString": "<base64 of the DER bytes>"},
        {"url": "expirationDate", "valueDate": "YYYY-MM-DD"}]}

The base64 DER is a PEM body without its armour lines, so PEM readers of the IG take it as is.
"""

from __future__ import annotations

from typing import Any

from security.trust.certificates import CertificateError, CertificateInfo, parse_certificate

DIGITAL_CERTIFICATE_URL = "http://hl7.org/fhir/uv/vhdir/StructureDefinition/digitalcertificate"
STANDARD_SYSTEM = "http://hl7.org/fhir/uv/vhdir/CodeSystem/digitalcertificate"
USE_SYSTEM = "http://hl7.org/fhir/uv/vhdir/CodeSystem/digitalcertificateuse"
USES = [("auth", "Authentication (TLS)"), ("signing", "Signing"), ("encryption", "Encryption")]
EXPIRY_WARNING_DAYS = 90


def certificate_extension(info: CertificateInfo, use: str) -> dict:
    """The digital certificate extension for one parsed certificate."""
    return {
        "url": DIGITAL_CERTIFICATE_URL,
        "extension": [
            {
                "url": "certificateStandard",
                "valueCoding": {"system": STANDARD_SYSTEM, "code": "x.509v3"},
            },
            {"url": "use", "valueCoding": {"system": USE_SYSTEM, "code": use}},
            {"url": "certificate", "valueString": info.der_base64},
            {"url": "expirationDate", "valueDate": info.not_after.date().isoformat()},
        ],
    }


def with_certificate(content: dict, info: CertificateInfo, use: str) -> dict:
    """A copy of `content` carrying this certificate instead of any earlier one of the same use."""
    kept = [ext for ext in content.get("extension") or [] if _use_of(ext) != use]
    return {**content, "extension": [*kept, certificate_extension(info, use)]}


def stored_certificates(content: dict) -> list[tuple[str, CertificateInfo | None]]:
    """(use, parsed certificate or None when unreadable) for each stored certificate."""
    found = []
    for ext in certificate_extensions(content):
        encoded = sub_value(ext, "certificate", "valueString")
        try:
            info = parse_certificate(encoded) if encoded else None
        except CertificateError:
            info = None
        found.append((_use_of(ext) or "unspecified", info))
    return found


def certificate_extensions(content: object) -> list[dict[str, Any]]:
    """The digital certificate extensions of a resource's JSON; any other shape gives none."""
    extensions = content.get("extension") if isinstance(content, dict) else None
    return [ext for ext in _list(extensions) if _is_certificate(ext)]


def sub_values(ext: dict, url: str, key: str) -> list:
    """The `key` value of every sub-extension `url` of `ext`, as stored (any JSON type)."""
    return [
        s.get(key)
        for s in _list(ext.get("extension"))
        if isinstance(s, dict) and s.get("url") == url
    ]


def sub_value(ext: dict[str, Any], url: str, key: str) -> Any:
    values = sub_values(ext, url, key)
    return values[0] if values else None


def _is_certificate(ext: object) -> bool:
    return isinstance(ext, dict) and ext.get("url") == DIGITAL_CERTIFICATE_URL


def _use_of(ext: dict[str, Any]) -> str | None:
    if not _is_certificate(ext):
        return None
    coding = sub_value(ext, "use", "valueCoding")
    return coding.get("code") if isinstance(coding, dict) else None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
