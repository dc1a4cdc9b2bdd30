"""The only renderer: FHIR JSON. There is deliberately no browsable API or XML."""

from __future__ import annotations

import json

from rest_framework.renderers import BaseRenderer

FHIR_JSON = "application/fhir+json"


class RawJSON(str):
    """JSON text that is already serialized (stored resources), sent without re-encoding."""


class FHIRJSONRenderer(BaseRenderer):
    media_type = FHIR_JSON
    format = "json"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        if isinstance(data, RawJSON):
            return data.encode("utf-8")
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
