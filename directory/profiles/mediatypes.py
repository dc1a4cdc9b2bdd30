"""BCP 13 media types (FHIR's `mimetypes` value set): checked by grammar, as they cannot be listed.

A code is `type "/" subtype *(";" parameter)` (RFC 6838 section 4.2, RFC 2045 section 5.1), e.g.
`application/fhir+json; fhirVersion=4.0`. The parameters are parsed by the standard library's
MIME header parser (`email.headerregistry`), which knows quoted strings, escapes and RFC 2231
continuations and reports what it cannot parse as defects; the type and subtype are held to RFC
6838's stricter names, which that parser would accept with comments and folding whitespace.
"""

from __future__ import annotations

import re
from email.policy import default as email_policy
from functools import lru_cache

# IANA's registered top-level media types (https://www.iana.org/assignments/top-level-media-types);
# RFC 6838 section 4.2.7: a new one needs a standards-track RFC, so an unknown one is an error.
TOP_LEVEL_TYPES = frozenset(
    {
        "application",
        "audio",
        "example",
        "font",
        "haptics",
        "image",
        "message",
        "model",
        "multipart",
        "text",
        "video",
    }
)
# RFC 6838 section 4.2: restricted-name, 1 to 127 characters, starting with a letter or digit.
RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&\-^_.+]{0,126}"
HEAD = re.compile(rf"({RESTRICTED_NAME})/({RESTRICTED_NAME})")
DESCRIPTION = "a media type: type/subtype[; name=value], RFC 6838"


@lru_cache(maxsize=1024)
def is_media_type(code: str) -> bool:
    """Whether `code` is a media type with a registered top-level type and well-formed parameters.

    Cached: a directory's Endpoints repeat a handful of payload types.
    """
    head, semicolon, params = code.partition(";")
    match = HEAD.fullmatch(head.rstrip())
    if match is None or match.group(1).lower() not in TOP_LEVEL_TYPES:
        return False
    if not semicolon:
        return True
    if not params.strip():
        return False  # "text/html;": a ";" must introduce a parameter
    header = email_policy.header_factory("content-type", code)
    return not header.defects and all(header.params.values())
