"""Admin forms: the form derived from the record's StructureDefinition (admin_fields), or the
resource JSON ("Advanced (JSON)" tab); saving either is a storage create or update.

The write happens in `clean()`: FHIR validation, reference checks and optimistic locking all run
inside storage's transaction, so that is the only place their errors can come back to the form.
A refused write leaves nothing stored.
"""

from __future__ import annotations

import json

from django import forms

from . import storage
from .admin_certificates import USES, with_certificate
from .admin_fields import PREFIX, apply, form_fields, initial_values
from .certificates import CertificateError, CertificateInfo, parse_certificate
from .errors import FHIRError
from .validation import parse_json

# Largest certificate file accepted; real ones are a few kilobytes.
CERTIFICATE_MAX_BYTES = 64 * 1024


def pretty(content: dict) -> str:
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

    class Meta:
        fields = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial.setdefault("content_json", pretty(self.instance.data))
            self.initial.setdefault("version", self.instance.version_id)
        self.written: storage.WriteResult | None = None
        # What the derived form edits: the stored resource, or a new one of this type.
        self.base = self.instance.data if self.instance.pk else self._new_resource()
        self.issues: list[dict] = []  # the refused write's OperationOutcome issues

    def _new_resource(self) -> dict:
        resource = {"resourceType": self.resource_type}
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

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        if self.editor == "form":
            content = apply(self.resource_type, self.base, self.data)
        else:
            content = self._parsed_content()
        if content is not None:
            self._write(self.prepare(content))
        return cleaned

    def prepare(self, content: dict) -> dict:
        """Last changes to the content before it is written (subclasses add certificates)."""
        return content

    def _parsed_content(self) -> dict | None:
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

    def _write(self, content: dict):
        try:
            if self.instance.pk:
                self.written = storage.update(
                    self.resource_type,
                    self.instance.logical_id,
                    content,
                    if_match=self._if_match(),
                )
            else:
                self.written = storage.create(self.resource_type, content)
        except FHIRError as exc:
            if self.editor == "form":
                # Placed next to their inputs by the admin (admin_structured.place_errors).
                self.issues = exc.issues()
                self.add_error(None, "Not saved: see the messages next to the fields.")
                return
            for line in issue_messages(exc):
                self.add_error("content_json", line)
            return
        row = type(self.instance).objects.get(pk=self.written.row.pk)
        self.instance = row

    def _if_match(self) -> str | None:
        version = self.cleaned_data.get("version")
        return f'W/"{version}"' if version else None


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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.certificate: CertificateInfo | None = None

    def clean_certificate_file(self):
        upload = self.cleaned_data.get("certificate_file")
        if upload is None:
            return None
        if upload.size > CERTIFICATE_MAX_BYTES:
            raise forms.ValidationError("This file is too large to be a certificate.")
        return self._parse(upload.read())

    def clean_certificate_pem(self):
        text = self.cleaned_data.get("certificate_pem") or ""
        return self._parse(text) if text.strip() else None

    def clean(self):
        uploaded = self.cleaned_data.get("certificate_file")
        pasted = self.cleaned_data.get("certificate_pem")
        if uploaded and pasted:
            self.add_error(
                "certificate_pem", "Give the certificate as a file or as text, not both."
            )
        self.certificate = uploaded or pasted
        return super().clean()

    def prepare(self, content: dict) -> dict:
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
