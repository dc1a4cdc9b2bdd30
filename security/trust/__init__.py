"""The trust core: every certificate and CRL decision of the server is made with these modules.

    certificates  reading certificates (PEM, DER, base64, URL-escaped headers), the one SHA-256
                  fingerprint with its display and x5t#S256 forms, subject/SAN/usage facts
    chains        issued-by (names and signature), paths to a community's roots, dates, usage
    crls          reading and checking CRLs, the one function that stores them, loading them

Everything else (request verification, anchor registration, CRL refresh, the CA toolkit, UDAP
registration, the admin) calls these; none of them parses, fingerprints or checks on its own.
"""
