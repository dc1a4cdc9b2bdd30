"""Standing up a community's CAs and issuing from them: keys, certificates and files together."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding

from . import PkiError, issue, policy
from .files import write_new
from .keys import generate_key, key_type_of, refuse_existing, write_private_key
from .layout import CaDirectory, CaInfo
from .revocation import publish_crl

ROOT_DIR, INTERMEDIATE_DIR = "root", "intermediate"
LEAF_SUFFIXES = (".key.pem", ".pem", ".chain.pem")


@dataclass(frozen=True)
class LeafFiles:
    certificate: x509.Certificate
    key_file: Path
    cert_file: Path
    chain_file: Path  # the certificate then its issuing CA, as a TLS peer should send them


def init_community(
    directory: Path,
    community: str,
    name: str,
    *,
    intermediate: bool = False,
    crl_url: str = "",
    key_type: str = "ec",
) -> list[CaDirectory]:
    """Create the root (and the intermediate) under `directory`, each with a first CRL."""
    root = CaDirectory(directory / ROOT_DIR)
    cas = [root] + ([CaDirectory(directory / INTERMEDIATE_DIR)] if intermediate else [])
    # Check every destination before generating anything, so a refusal leaves nothing half made.
    refuse_existing(*(p for ca in cas for p in (ca.info_file, ca.key_file, ca.cert_file)))
    _create_root(
        root, CaInfo(community, name, "root", key_type, _crl_url(crl_url, community, "root"))
    )
    if intermediate:
        info = CaInfo(
            community, name, "intermediate", key_type, _crl_url(crl_url, community, "issuing")
        )
        _create_intermediate(root, cas[1], info)
    for ca in cas:
        publish_crl(ca)
    return cas


def _crl_url(base: str, community: str, which: str) -> str:
    # One base URL for the community; each CA's CRL is a file of its own beneath it.
    return f"{base.rstrip('/')}/{community}-{which}.crl" if base else ""


def _create_root(root: CaDirectory, info: CaInfo) -> None:
    root.create(info)
    key = generate_key(info.key_type)
    write_private_key(root.key_file, key)
    subject = issue.Subject(common_name=f"{info.name} Root CA", organization=info.name)
    with root.locked():
        cert = issue.self_signed_root(subject, key, policy.ROOT_DAYS, root.next_serial())
    write_new(root.cert_file, cert.public_bytes(Encoding.PEM))


def _create_intermediate(root: CaDirectory, ca: CaDirectory, info: CaInfo) -> None:
    ca.create(info)
    key = generate_key(info.key_type)
    write_private_key(ca.key_file, key)
    subject = issue.Subject(common_name=f"{info.name} Issuing CA", organization=info.name)
    with root.locked():
        cert = issue.intermediate_ca(
            issuer(root), subject, key.public_key(), policy.INTERMEDIATE_DAYS, root.next_serial()
        )
        root.record_issued(cert)
    write_new(ca.cert_file, cert.public_bytes(Encoding.PEM))


def issuer(ca: CaDirectory) -> issue.Issuer:
    return issue.Issuer(ca.certificate(), ca.private_key(), ca.info().crl_url)


def issue_leaf(
    ca: CaDirectory,
    build: Callable[[issue.Issuer, CertificatePublicKeyTypes, int], x509.Certificate],
    out_dir: Path,
    basename: str,
    key_type: str = "",
) -> LeafFiles:
    """Generate a key in `out_dir`, have `build(issuer, public_key, serial)` make the
    certificate, record it under issued/ and write it with its chain."""
    if "/" in basename or basename.startswith("."):
        raise PkiError(f"{basename!r} cannot name a file")
    signer = issuer(ca)  # reads the CA key first: no client key is made for a CA we cannot use
    key_file, cert_file, chain_file = (out_dir / f"{basename}{ext}" for ext in LEAF_SUFFIXES)
    refuse_existing(key_file, cert_file, chain_file)
    out_dir.mkdir(parents=True, exist_ok=True)
    key = generate_key(key_type or key_type_of(signer.key))
    # Signed before the key is written: a refused request (e.g. outliving the CA) leaves no key.
    with ca.locked():
        cert = build(signer, key.public_key(), ca.next_serial())
        ca.record_issued(cert)
    write_private_key(key_file, key)
    write_new(cert_file, cert.public_bytes(Encoding.PEM))
    write_new(chain_file, _chain_pem(cert, ca, signer))
    return LeafFiles(cert, key_file, cert_file, chain_file)


def _chain_pem(cert: x509.Certificate, ca: CaDirectory, signer: issue.Issuer) -> bytes:
    # Relying parties hold the root; an intermediate must travel with the certificate.
    chain = cert.public_bytes(Encoding.PEM)
    if ca.info().kind != "root":
        chain += signer.certificate.public_bytes(Encoding.PEM)
    return chain
