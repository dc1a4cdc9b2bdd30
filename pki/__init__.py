"""A small certificate authority toolkit for a trust community's own PKI.

Each CA lives in its own directory; `pki_init_community --dir DIR` makes DIR/root and, with
--intermediate, DIR/intermediate (the one that issues servers and clients). A CA directory holds:

    ca.json          what the CA is: community, kind, key type, CRL URL embedded in what it issues
    ca.pem           its certificate
    ca.key.pem       its private key (PKCS#8, mode 0600, created owner-only, never overwritten)
    serial           the next serial counter (serials are counter << 64 | 64 random bits)
    revoked.json     revocation state: CRL number and every revoked serial, date and reason
    crl.der, crl.pem the last published CRL, replaced atomically
    issued/<serial>.pem  every certificate it signed, by lowercase hex serial
    .lock            held while the CA changes state, so two commands cannot interleave
"""


class PkiError(Exception):
    """A PKI operation was refused or failed; the message is safe to show (never key material)."""
