"""Writing PKI files: new files are never overwritten, published files are replaced atomically."""

from __future__ import annotations

import os
from pathlib import Path

from . import PkiError

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644


def write_new(path: Path, data: bytes, mode: int = PUBLIC_MODE) -> None:
    """Create `path` with `mode` from the first byte; refuse if anything is already there."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError as error:
        raise PkiError(f"{path} already exists; refusing to overwrite it") from error
    except OSError as error:
        raise PkiError(f"cannot create {path}: {error.strerror}") from error
    try:
        # The umask may only have narrowed the mode; set it exactly so 0644 stays readable.
        os.fchmod(fd, mode)
        _write_all(fd, data)
    finally:
        os.close(fd)


def replace(path: Path, data: bytes, mode: int = PUBLIC_MODE) -> None:
    """Replace `path` in one step, so a reader (a web server serving a CRL) never sees half."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    write_new(temporary, data, mode)
    os.replace(temporary, path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.fsync(fd)
