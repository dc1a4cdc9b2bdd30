"""Trust communities, API clients, their certificate identities and keys, and audit records.

No secret is ever stored here in clear: API keys are kept as keyed hashes, and certificates and
CRLs are public material.
"""

from django.db import models


class TrustCommunity(models.Model):
    """A trust community (e.g. a Direct trust bundle or a national PKI) with its own CA chain."""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "trust communities"

    def __str__(self) -> str:
        return self.name


class TrustAnchor(models.Model):
    """A CA certificate of a community: its root (the anchor) or an intermediate below it."""

    ROOT, INTERMEDIATE = "root", "intermediate"
    KINDS = [(ROOT, "Root (trust anchor)"), (INTERMEDIATE, "Intermediate CA")]

    community = models.ForeignKey(TrustCommunity, on_delete=models.CASCADE, related_name="anchors")
    kind = models.CharField(max_length=12, choices=KINDS)
    certificate_pem = models.TextField()
    subject = models.CharField(max_length=500)
    fingerprint_sha256 = models.CharField(max_length=64, unique=True)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    crl_source = models.CharField(
        max_length=500, blank=True, help_text="file path or http(s) URL of the CRL this CA issues"
    )
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.community}: {self.subject}"


class RevocationList(models.Model):
    """The latest verified CRL of one CA, with its refresh state."""

    issuer = models.OneToOneField(TrustAnchor, on_delete=models.CASCADE, related_name="crl")
    crl_der = models.BinaryField(null=True)
    this_update = models.DateTimeField(null=True)
    next_update = models.DateTimeField(null=True)
    fetched_at = models.DateTimeField(null=True)
    last_attempt_at = models.DateTimeField(null=True)
    last_error = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"CRL of {self.issuer.subject}"


class ApiClient(models.Model):
    """A registered system allowed to call the directory API."""

    ACTIVE, SUSPENDED = "active", "suspended"
    STATUSES = [(ACTIVE, "Active"), (SUSPENDED, "Suspended")]

    name = models.CharField(max_length=200, unique=True)
    organization = models.CharField(max_length=200, blank=True)
    community = models.ForeignKey(
        TrustCommunity, on_delete=models.PROTECT, related_name="clients", null=True, blank=True
    )
    allowed_scopes = models.TextField(
        blank=True, help_text="space-separated scopes this client may ever be granted"
    )
    status = models.CharField(max_length=12, choices=STATUSES, default=ACTIVE)
    contact = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    # Built-in authorization server (security/oauth): the client_id its assertions name, the
    # public keys (a JWKS) they are signed with, and the UDAP software URI it registered with.
    oauth_client_id = models.CharField(
        max_length=64, unique=True, null=True, blank=True, verbose_name="OAuth client_id"
    )
    jwks = models.TextField(
        blank=True, help_text="public keys (JWKS JSON) for private_key_jwt client authentication"
    )
    udap_uri = models.CharField(
        max_length=500, blank=True, help_text="the UDAP software statement's iss, when registered"
    )

    class Meta:
        verbose_name = "API client"

    def __str__(self) -> str:
        return self.name

    @property
    def scope_set(self) -> set[str]:
        return set(self.allowed_scopes.split())


class CertificateIdentity(models.Model):
    """One way a client's certificate is recognised: SAN DNS name, subject DN, or pinned hash."""

    DNS, SUBJECT, FINGERPRINT = "dns", "subject", "fingerprint"
    KINDS = [(DNS, "SAN DNS name"), (SUBJECT, "Subject DN"), (FINGERPRINT, "SHA-256 fingerprint")]

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(max_length=12, choices=KINDS)
    value = models.CharField(max_length=500)
    # The uploaded certificate, when the identity came from one; shown parsed in the admin.
    certificate_pem = models.TextField(blank=True)
    not_after = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="certificate_identity_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.value}"


class ApiKey(models.Model):
    """A client's API key: a public prefix to find it and a keyed hash to check it."""

    ACTIVE, ROTATING, RETIRED, EXPIRED = "active", "rotating", "retired", "expired"
    STATES = [
        (ACTIVE, "Active"),
        (ROTATING, "Rotating (valid until grace deadline)"),
        (RETIRED, "Retired"),
        (EXPIRED, "Expired"),
    ]

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="keys")
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=STATES, default=ACTIVE)
    created = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    grace_until = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    retired_reason = models.CharField(max_length=500, blank=True)
    replaced_by = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replaces"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        # Key actions are permissions of their own: support staff may take them without being
        # allowed to change a client's scopes, identities or anything in the directory.
        verbose_name = "API key"
        permissions = [
            ("issue_apikey", "Can issue a new API key"),
            ("rotate_apikey", "Can rotate an API key"),
            ("retire_apikey", "Can retire an API key"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.state})"


class KeyEvent(models.Model):
    """An audited action on a client or key, by a person or a command."""

    time = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=40)
    client = models.ForeignKey(ApiClient, on_delete=models.SET_NULL, null=True, related_name="+")
    key_prefix = models.CharField(max_length=16, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    detail = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.key_prefix}"


class RequestAudit(models.Model):
    """One API request: who, with which credentials (never the secrets), what, and the outcome."""

    # One row per request, so every index and check on it is paid on every request. `time` and
    # `client` lead the composite indexes below, which serve their lookups; without a database
    # constraint the INSERT runs no foreign-key trigger, whose lock on the client's row made
    # concurrent requests of one client queue on it (pgbench, 8 connections: 1.4x the inserts).
    # Deleting a client still nulls its rows (Django applies SET_NULL); the name stays.
    time = models.DateTimeField()
    client = models.ForeignKey(
        ApiClient,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    client_name = models.CharField(max_length=200, blank=True)
    remote_addr = models.CharField(max_length=64, blank=True)
    certificate_fingerprint = models.CharField(max_length=64, blank=True)
    certificate_subject = models.CharField(max_length=500, blank=True)
    key_prefix = models.CharField(max_length=16, blank=True)
    token_subject = models.CharField(max_length=200, blank=True)
    token_issuer = models.CharField(max_length=300, blank=True)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    interaction = models.CharField(max_length=30, blank=True)
    resource_type = models.CharField(max_length=40, blank=True)
    resource_id = models.CharField(max_length=64, blank=True)
    status = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=40, help_text="'ok' or the refusal reason code")
    decision = models.CharField(
        max_length=500, blank=True, help_text="The API's authorization decisions, what each needed"
    )
    duration_ms = models.PositiveIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["client", "time"], name="audit_client_time_idx"),
            models.Index(fields=["outcome", "time"], name="audit_outcome_time_idx"),
            # The charts' one GROUP BY over a time range (security/charts.py) reads only these
            # columns: an index-only scan on PostgreSQL, no visit to the audit rows themselves.
            models.Index(
                fields=["time", "outcome", "client", "key_prefix"], name="audit_chart_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.method} {self.path} {self.status}"


class AuditHourlyCount(models.Model):
    """Requests per hour, outcome, client and key prefix: the audit rolled up for the charts.

    Written by security/audit_rollup.py for whole hours that have settled; the charts read these
    for the past and the raw audit only for the last hour or so (security/charts.py).
    """

    hour = models.DateTimeField()
    client = models.ForeignKey(
        ApiClient, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    outcome = models.CharField(max_length=40)
    key_prefix = models.CharField(max_length=16, blank=True)
    requests = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["hour"], name="audit_hourly_hour_idx")]


class AuditRollupState(models.Model):
    """One row: the audit is rolled up for every hour before `rolled_until`; locked to roll up."""

    rolled_until = models.DateTimeField(null=True)


class SigningKey(models.Model):
    """A signing key of the built-in authorization server (security/oauth/signing.py).

    The private key is stored encrypted (Fernet, key derived from OAUTH_SIGNING_KEY_SECRET) and
    erased when the key retires; the public half stays published until `publish_until`.
    """

    ACTIVE, RETIRING = "active", "retiring"
    STATES = [(ACTIVE, "Active (signs new tokens)"), (RETIRING, "Retiring (verifies only)")]

    kid = models.CharField(max_length=64, unique=True)
    algorithm = models.CharField(max_length=8, default="ES256")
    private_key_encrypted = models.TextField(blank=True)
    public_jwk = models.TextField()
    state = models.CharField(max_length=10, choices=STATES, default=ACTIVE)
    created = models.DateTimeField(auto_now_add=True)
    publish_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("rotate_signingkey", "Can rotate the token signing key")]

    def __str__(self) -> str:
        return f"{self.kid} ({self.state})"


class UsedAssertion(models.Model):
    """A JWT id already accepted, kept until the JWT expires so a replay is refused everywhere."""

    digest = models.CharField(max_length=64, unique=True)  # SHA-256 of purpose, issuer and jti
    expires_at = models.DateTimeField(db_index=True)
