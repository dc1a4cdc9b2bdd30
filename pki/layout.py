"""A CA directory (see the package docstring): its paths, description, certificate and serials."""

from __future__ import annotations

import fcntl
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from security.trust.certificates import CertificateError, load_pem_certificate

from . import PkiError
from .files import replace, write_new
from .keys import PrivateKey, load_private_key

RANDOM_SERIAL_BITS = 64  # CA/Browser Forum minimum of unpredictable serial bits


@dataclass(frozen=True)
class CaInfo:
    """What ca.json records about a CA."""

    community: str
    name: str
    kind: str  # "root" or "intermediate"
    key_type: str
    crl_url: str = ""  # where this CA's CRL is published; embedded in what it issues


@dataclass(frozen=True)
class CaDirectory:
    path: Path

    info_file = property(lambda self: self.path / "ca.json")
    cert_file = property(lambda self: self.path / "ca.pem")
    key_file = property(lambda self: self.path / "ca.key.pem")
    serial_file = property(lambda self: self.path / "serial")
    revoked_file = property(lambda self: self.path / "revoked.json")
    crl_der_file = property(lambda self: self.path / "crl.der")
    crl_pem_file = property(lambda self: self.path / "crl.pem")
    issued_dir = property(lambda self: self.path / "issued")

    def create(self, info: CaInfo) -> None:
        """Make the empty directory structure; refuses a directory that already holds a CA."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.issued_dir.mkdir(exist_ok=True)
        write_new(self.info_file, json.dumps(asdict(info), indent=2).encode())
        write_new(self.serial_file, b"1\n")

    def require_exists(self) -> None:
        if not self.info_file.is_file() or not self.cert_file.is_file():
            raise PkiError(f"{self.path} is not a CA directory (no ca.json and ca.pem)")

    def info(self) -> CaInfo:
        self.require_exists()
        try:
            return CaInfo(**json.loads(self.info_file.read_text()))
        except (ValueError, TypeError) as error:
            raise PkiError(f"{self.info_file} is not a CA description") from error

    def certificate(self) -> x509.Certificate:
        self.require_exists()
        return _read_certificate(self.cert_file)

    def private_key(self) -> PrivateKey:
        return load_private_key(self.key_file)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the CA's lock: serials, revocations and CRL numbers change one command at a time."""
        with (self.path / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def next_serial(self) -> int:
        """A unique, unpredictable serial: the counter keeps it unique, the random bits
        unguessable. Call with the lock held."""
        counter = int(self.serial_file.read_text().strip() or "1")
        replace(self.serial_file, f"{counter + 1}\n".encode())
        return (counter << RANDOM_SERIAL_BITS) | secrets.randbits(RANDOM_SERIAL_BITS)

    def record_issued(self, cert: x509.Certificate) -> Path:
        path = self.issued_dir / f"{serial_hex(cert.serial_number)}.pem"
        write_new(path, cert.public_bytes(Encoding.PEM))
        return path

    def issued(self) -> list[x509.Certificate]:
        """Every certificate this CA signed, oldest first."""
        certs = [_read_certificate(p) for p in self.issued_dir.glob("*.pem")]
        return sorted(certs, key=lambda c: (c.not_valid_before_utc, c.serial_number))

    def issued_certificate(self, serial: int) -> x509.Certificate | None:
        path = self.issued_dir / f"{serial_hex(serial)}.pem"
        return _read_certificate(path) if path.is_file() else None


def _read_certificate(path: Path) -> x509.Certificate:
    try:
        return load_pem_certificate(path.read_bytes())
    except CertificateError as error:
        raise PkiError(f"{path} is not a PEM certificate") from error


def serial_hex(serial: int) -> str:
    return f"{serial:x}"


def parse_serial(text: str) -> int:
    """A serial typed as hex, with or without 0x, colons or spaces."""
    cleaned = text.strip().lower().removeprefix("0x").replace(":", "").replace(" ", "")
    try:
        return int(cleaned, 16)
    except ValueError as error:
        raise PkiError(f"{text!r} is not a hexadecimal serial number") from error
