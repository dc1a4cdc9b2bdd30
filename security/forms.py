"""Forms of the web admin's key and identity actions; none of them ever carries a key."""

from datetime import datetime
from typing import Any

from django import forms
from django.utils import timezone

from .clients import ClientError, load_certificate
from .keys import GRACE_CHOICES
from .models import CertificateIdentity

# A client certificate is a few kilobytes; anything far larger is not one.
MAX_CERTIFICATE_BYTES = 64 * 1024


class IssueKeyForm(forms.Form):
    """Issue a new key, optionally with an expiry date."""

    expires_at = forms.DateTimeField(
        required=False,
        label="Expires at (UTC, optional)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def clean_expires_at(self) -> datetime | None:
        expires_at = self.cleaned_data["expires_at"]
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("The expiry must be in the future.")
        return expires_at


class RotateKeyForm(forms.Form):
    """Replace a key; the old one keeps working for the chosen grace period."""

    grace = forms.ChoiceField(
        choices=GRACE_CHOICES,
        initial="24h",
        widget=forms.RadioSelect,
        label="Old key keeps working for",
    )
    reason = forms.CharField(required=False, max_length=500, label="Reason")


class RetireKeyForm(forms.Form):
    """Stop a key now; the reason goes into the audit trail, so it is mandatory."""

    reason = forms.CharField(
        max_length=500,
        label="Reason",
        help_text="Required, e.g. “compromised: posted in a support ticket”.",
    )


class IdentityForm(forms.Form):
    """A certificate identity, read from an uploaded or pasted PEM certificate, or typed."""

    kind = forms.ChoiceField(choices=CertificateIdentity.KINDS, label="Recognise the client by")
    certificate = forms.FileField(required=False, label="Certificate file (PEM)")
    pem = forms.CharField(
        required=False,
        label="…or paste the PEM",
        widget=forms.Textarea(attrs={"rows": 6, "cols": 70, "spellcheck": "false"}),
    )
    value = forms.CharField(
        required=False,
        max_length=500,
        label="…or type the value",
        help_text="A DNS name, an RFC 4514 subject DN, or a SHA-256 fingerprint.",
    )

    def clean_certificate(self) -> str:
        upload = self.cleaned_data["certificate"]
        if upload is None:
            return ""
        if upload.size > MAX_CERTIFICATE_BYTES:
            raise forms.ValidationError("That file is too large to be a certificate.")
        try:
            return upload.read().decode("ascii")
        except UnicodeDecodeError as exc:
            raise forms.ValidationError("The file is not a PEM certificate.") from exc

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        sources = [s for s in ("certificate", "pem", "value") if (cleaned.get(s) or "").strip()]
        if len(sources) != 1:
            raise forms.ValidationError("Give exactly one of: a file, a pasted PEM, or a value.")
        pem = (cleaned.get("certificate") or cleaned.get("pem") or "").strip()
        if pem:
            self._check_certificate(pem)
        cleaned["certificate_pem"] = pem
        return cleaned

    @staticmethod
    def _check_certificate(pem: str) -> None:
        try:
            load_certificate(pem)
        except ClientError as exc:
            raise forms.ValidationError(str(exc)) from exc
