"""The secrets sweep: no key or token issued during the test run may appear in anything it wrote.

Every API key issued and every token minted during the run is remembered. Checked against them:
every log record of this process (after the redaction filter), every test's captured stdout,
stderr and log, and, at the end of the session, every `*.log` file under pytest's temporary
directory (gunicorn, nginx, Redis and load-generator logs of the end-to-end, fault and load
tests) plus the throw-away PostgreSQL clusters' logs, read before those are deleted.

A secret is looked for in every form a client could send it in: as is, percent-encoded, and
inside base64 or base64url at any of the three byte alignments (an `Authorization: Basic`
header holding it after a user name, say).
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

ISSUED: set[str] = set()
SECRET_CHARS = 43  # the base64url length of a key's 256 random bits
# Texts kept for the final sweep, by where they came from (captured streams, deleted logs).
KEPT: dict[str, list[str]] = {}

WINDOW = 16  # the leading characters every form is indexed by
# Runs of the characters any form consists of; a form can only lie inside one.
_RUN = re.compile(r"[A-Za-z0-9+/=_.%~-]{" + str(WINDOW) + ",}")


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


def forms(secret: str) -> set[str]:
    """The secret as it would appear in text however a client encoded it."""
    found = {secret, quote(secret, safe="")}
    raw = secret.encode()
    for shift in range(3):
        # After `shift` unknown bytes, the first characters mix those bytes in and the last
        # ones whatever follows; the characters in between are the secret's alone.
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        core = encoded[-(-shift * 4 // 3) : (shift + len(raw)) * 4 // 3]
        if len(core) >= WINDOW:
            found |= {core, core.replace("+", "-").replace("/", "_")}
    return found


def leaked(texts: Iterable[str]) -> list[str]:
    """The issued secrets (their first characters) found in any of the texts, in any form."""
    index, short = _windows()
    found: set[str] = set()
    for text in texts:
        found.update(secret for form, secret in short if form in text)
        for run in _RUN.finditer(text):
            _scan(run.group(), index, found)
    return sorted(secret[:12] + "…" for secret in found)


_Index = tuple[dict[str, list[tuple[str, int, str]]], list[tuple[str, str]]]
_built: dict[frozenset[str], _Index] = {}


def _windows() -> _Index:
    """Every WINDOW-long stretch of every form, with its offset; the forms too short for that."""
    # Built again only when a secret was issued since (each build takes seconds).
    key = frozenset(ISSUED)
    if key not in _built:
        _built.clear()
        _built[key] = _build_windows()
    return _built[key]


def _build_windows() -> _Index:
    index: dict[str, list[tuple[str, int, str]]] = {}
    short: list[tuple[str, str]] = []
    for secret in ISSUED:
        for form in forms(secret):
            if len(form) < 2 * WINDOW - 1:
                short.append((form, secret))
                continue
            for offset in range(len(form) - WINDOW + 1):
                index.setdefault(form[offset : offset + WINDOW], []).append((form, offset, secret))
    return index, short


def _scan(run: str, index: dict[str, list[tuple[str, int, str]]], found: set[str]) -> None:
    # A form at least 2 * WINDOW - 1 long covers a whole window starting at a multiple of
    # WINDOW, so only those starts need looking up.
    for start in range(0, len(run) - WINDOW + 1, WINDOW):
        for form, offset, secret in index.get(run[start : start + WINDOW], ()):
            if start >= offset and run.startswith(form, start - offset):
                found.add(secret)


def keep(where: str, texts: Iterable[str]) -> None:
    """Keep texts for the session's final sweep (what will be deleted or only captured)."""
    KEPT.setdefault(where, []).extend(text for text in texts if text)


def log_files(root: Path) -> Iterable[str]:
    """The text of every `*.log` file under `root`."""
    for path in sorted(root.rglob("*.log")):
        if path.is_file():
            yield path.read_text(errors="replace")
