"""factory-boy factories for API clients and keys, and a throwaway client certificate.

`ApiKeyFactory` makes a real key: the instance carries its `plaintext` (tests only), and the row
holds the prefix and hash exactly as `issue_key` would store them.
"""

import datetime as dt

import factory
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from factory.django import DjangoModelFactory

from security.keys import hash_key, new_key_material
from security.models import ApiClient, ApiKey


class ApiClientFactory(DjangoModelFactory):
    class Meta:
        model = ApiClient

    name = factory.Sequence(lambda n: f"Client {n}")
    organization = factory.Sequence(lambda n: f"Organization {n}")
    allowed_scopes = "system/Practitioner.rs system/Organization.rs"
    status = ApiClient.ACTIVE


class ApiKeyFactory(DjangoModelFactory):
    class Meta:
        model = ApiKey

    client = factory.SubFactory(ApiClientFactory)
    material = factory.LazyFunction(new_key_material)
    prefix = factory.LazyAttribute(lambda o: o.material[0])
    key_hash = factory.LazyAttribute(lambda o: hash_key(o.material[1]))
    state = ApiKey.ACTIVE

    @classmethod
    def _create(cls, model_class, *args, material, **kwargs):
        key = super()._create(model_class, *args, **kwargs)
        key.plaintext = material[1]
        return key


CERTIFICATE_NOT_AFTER = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)


def make_certificate(dns_names=("a.example.org", "B.Example.org"), common_name="Client A"):
    """A self-signed leaf; the clients service only reads it, it does not validate chains."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Clinic"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(CERTIFICATE_NOT_AFTER)
    )
    if dns_names:
        san = x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names])
        builder = builder.add_extension(san, critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return cert, cert.public_bytes(serialization.Encoding.PEM).decode()
