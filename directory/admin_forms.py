"""Admin forms: the form derived from the record's StructureDefinition (admin_fields), or the
resource JSON ("Advanced (JSON)" tab); saving either is a storage create or update.

`clean()` runs every check of that write (`storage.check_write`: FHIR validation, references,
unique identifiers, the version the editor started from) and writes nothing, so a refusal is a
form error; the admin's `save_model` then writes through storage, in the same transaction.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django import forms

from security.trust.certificates import CertificateError, CertificateInfo, parse_certificate

from . import storage
from .admin_certificates import USES, with_certificate
from .admin_fields import PREFIX, apply, form_fields, initial_values
from .admin_models import RecordMixin
from .errors import FHIRError
from .validation import parse_json

# Largest certificate file accepted; real ones are a few kilobytes.
CERTIFICATE_MAX_BYTES = 64 * 1024


def pretty(content: dict[str, Any]) -> str:
    return json.dumps(content, indent=2, ensure_ascii=False)


def issue_messages(error: FHIRError) -> list[str]:
    """One line per OperationOutcome issue, naming the element when the text does not."""
    lines = []
    for issue in error.issues():
        text = issue.get("diagnostics") or issue.get("code", "error")
        where = [e for e in issue.get("expression") or [] if e not in text]
        lines.append(f"{text} (at {', '.join(where)})" if where else text)
    return lines


class ResourceForm(forms.ModelForm):
    """Edits one resource as FHIR JSON; the instance is a per-type proxy of Resource."""

    content_json = forms.CharField(
        required=False,  # the derived form is the other way to edit
        label="Resource JSON",
        widget=forms.Textarea(attrs={"rows": 28, "cols": 100, "class": "vLargeTextField"}),
        help_text="The resource as FHIR R4 JSON. It is checked exactly as the FHIR API checks it.",
    )
    # The version the editor started from: a save over someone else's newer version is refused.
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    # The profile a new record is created under (the admin sets it from `?profile=`).
    profile: str | None = None

    if TYPE_CHECKING:  # the admin's records: per-type proxies of Resource (admin_models)
        instance: RecordMixin

    class Meta:
        fields = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial.setdefault("content_json", pretty(self.instance.data))
            self.initial.setdefault("version", self.instance.version_id)
        self.content: dict[str, Any] | None = (
            None  # what save_model writes, once clean() accepted it
        )
        # What the derived form edits: the stored resource, or a new one of this type.
        self.base = self.instance.data if self.instance.pk else self._new_resource()
        self.issues: list[dict[str, Any]] = []  # the refused write's OperationOutcome issues

    def _new_resource(self) -> dict[str, Any]:
        resource: dict[str, Any] = {"resourceType": self.resource_type}
        if self.profile:
            resource["meta"] = {"profile": [self.profile]}
        return resource

    @property
    def editor(self) -> str:
        """ "form" or "json": which tab was submitted. A post without the choice (a script, the
        earlier admin) is JSON."""
        if not self.is_bound:
            return "form"
        return "form" if self.data.get("editor") == "form" else "json"

    def structured_values(self) -> dict[str, str]:
        """The derived form's inputs: as submitted after a refused save, else as stored."""
        if self.is_bound and self.editor == "form":
            return {k: v for k, v in self.data.items() if k.startswith(PREFIX)}
        return initial_values(form_fields(self.resource_type, self.base), self.base)

    @property
    def resource_type(self) -> str:
        return self.instance.RESOURCE_TYPE

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        content: dict[str, Any] | None
        if self.editor == "form":
            content = apply(self.resource_type, self.base, self.data)
        else:
            content = self._parsed_content()
        if content is not None:
            self._check(self.prepare(content))
        return cleaned

    def prepare(self, content: dict[str, Any]) -> dict[str, Any]:
        """Last changes to the content before it is written (subclasses add certificates)."""
        return content

    def _parsed_content(self) -> dict[str, Any] | None:
        if not (self.cleaned_data.get("content_json") or "").strip():
            self.add_error("content_json", "This field is required.")
            return None
        try:
            content = parse_json(self.cleaned_data.get("content_json") or "")
        except FHIRError as exc:
            self.add_error("content_json", exc.diagnostics)
            return None
        # Spare the editor typing what the page already knows.
        content.setdefault("resourceType", self.resource_type)
        if self.instance.pk:
            content.setdefault("id", self.instance.logical_id)
        return content

    def _check(self, content: dict[str, Any]) -> None:
        try:
            storage.check_write(
                self.resource_type,
                content,
                logical_id=self.instance.logical_id if self.instance.pk else None,
                if_match=self.if_match,
            )
        except FHIRError as exc:
            self.refuse(exc)
            return
        self.content = content

    def refuse(self, error: FHIRError) -> None:
        """Shows storage's refusal: next to the fields on the derived form, else under the JSON."""
        if self.editor == "form":
            # Placed next to their inputs by the admin (admin_structured.place_errors).
            self.issues = error.issues()
            self.add_error(None, "Not saved: see the messages next to the fields.")
            return
        for line in issue_messages(error):
            self.add_error("content_json", line)

    @property
    def if_match(self) -> str | None:
        """The editor's starting version as an If-Match ETag: a newer one refuses the write."""
        version = self.cleaned_data.get("version")
        return str(version) if version else None


class EndpointForm(ResourceForm):
    """An Endpoint, plus an optional certificate to upload (PEM or DER file) or paste (PEM)."""

    certificate_file = forms.FileField(
        required=False, help_text="A certificate file, PEM or DER (.pem, .crt, .cer, .der)."
    )
    certificate_pem = forms.CharField(
        required=False,
        label="Or paste a certificate",
        widget=forms.Textarea(attrs={"rows": 6, "cols": 70}),
        help_text="PEM text from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----.",
    )
    certificate_use = forms.ChoiceField(
        choices=USES,
        initial="auth",
        required=False,
        help_text="A new certificate replaces a stored one of the same use.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.certificate: CertificateInfo | None = None

    def clean_certificate_file(self) -> CertificateInfo | None:
        upload = self.cleaned_data.get("certificate_file")
        if upload is None:
            return None
        if upload.size > CERTIFICATE_MAX_BYTES:
            raise forms.ValidationError("This file is too large to be a certificate.")
        upload.seek(0)  # a save retried after a concurrent write reads the file again
        return self._parse(upload.read())

    def clean_certificate_pem(self) -> CertificateInfo | None:
        text = self.cleaned_data.get("certificate_pem") or ""
        return self._parse(text) if text.strip() else None

    def clean(self) -> dict[str, Any] | None:
        uploaded = self.cleaned_data.get("certificate_file")
        pasted = self.cleaned_data.get("certificate_pem")
        if uploaded and pasted:
            self.add_error(
                "certificate_pem", "Give the certificate as a file or as text, not both."
            )
        self.certificate = uploaded or pasted
        return super().clean()

    def prepare(self, content: dict[str, Any]) -> dict[str, Any]:
        if self.certificate is None:
            return content
        use = self.cleaned_data.get("certificate_use") or "auth"
        return with_certificate(content, self.certificate, use)

    @staticmethod
    def _parse(data: bytes | str) -> CertificateInfo:
        try:
            return parse_certificate(data)
        except CertificateError as exc:
            raise forms.ValidationError(str(exc)) from None
