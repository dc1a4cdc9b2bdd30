"""The whole test run's log output, as the configured handlers would emit it, checked for secrets.

Every API key issued and every token minted during the run is remembered; at the end of the
session none of them may appear in any log line or traceback that passed the redaction filter.
"""

from __future__ import annotations

import logging

ISSUED: set[str] = set()
SECRET_CHARS = 43  # the base64url length of a key's 256 random bits


class RunLog(logging.Handler):
    """Keeps the formatted text of every record that reaches the root logger's handlers."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        from security.redaction import RedactingFilter

        self.addFilter(RedactingFilter())
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def remember_issued_keys(monkeypatch_target) -> None:
    """Wrap key generation so every plaintext key of the run is known to the final check."""
    original = monkeypatch_target.new_key_material

    def recording():
        prefix, plaintext = original()
        # The random part alone is as secret as the whole key; it may itself contain "_".
        ISSUED.update({plaintext, plaintext[-SECRET_CHARS:]})
        return prefix, plaintext

    monkeypatch_target.new_key_material = recording


def leaked(lines: list[str]) -> list[str]:
    text = "\n".join(lines)
    return sorted(secret[:12] + "…" for secret in ISSUED if secret in text)
