"""Key pairs: EC P-256 or RSA-3072, private keys written owner-only and never overwritten."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from . import PkiError
from .files import PRIVATE_MODE, write_new

KEY_TYPES = ("ec", "rsa")
RSA_BITS = 3072  # NIST's 128-bit security level, the same strength as P-256

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def generate_key(key_type: str = "ec") -> PrivateKey:
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    raise PkiError(f"unknown key type {key_type!r}; use one of {', '.join(KEY_TYPES)}")


def key_type_of(key: object) -> str:
    return "rsa" if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey) else "ec"


def write_private_key(path: Path, key: PrivateKey) -> None:
    """PKCS#8 PEM at `path`, mode 0600 from creation; an existing file is never replaced."""
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_new(path, data, PRIVATE_MODE)


def refuse_existing(*paths: Path) -> None:
    """Fail before any key is generated when one of `paths` would have to be overwritten."""
    for path in paths:
        if path.exists() or path.is_symlink():
            raise PkiError(f"{path} already exists; refusing to overwrite it")


def load_private_key(path: Path) -> PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise PkiError(f"cannot read the CA key {path}: {error.strerror}") from error
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        # Never echo the parser's message: it could quote part of the file.
        raise PkiError(f"{path} is not an unencrypted PEM private key") from error
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PkiError(f"{path} holds an unsupported key type")
    return key
