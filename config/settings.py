"""All settings for the directory service, read from the environment with safe defaults."""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

ENVIRONMENT = env.str("ENVIRONMENT", default="dev")
if ENVIRONMENT not in ("dev", "test", "prod"):
    raise ImproperlyConfigured(f"ENVIRONMENT must be dev, test or prod, not {ENVIRONMENT!r}")
DEBUG = env.bool("DEBUG", default=False)
# Development default only; every shared deployment sets SECRET_KEY in the environment.
SECRET_KEY = env.str("SECRET_KEY", default="dev-insecure-secret-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "rest_framework",
    "directory",
    "fhirapi",
    "security",
    "pki",
    "sampledata",
    "subscriptions",
]

# The transport-security checks, in the order they run on /fhir requests (README, "Security
# checks"). Each refuses with its own reason code; the audit wraps them all so refusals are kept.
SECURITY_MIDDLEWARE = [
    "security.middleware.audit.AuditMiddleware",
    "security.middleware.proxy.TrustedProxyMiddleware",
    "security.middleware.client_certificate.ClientCertificateMiddleware",
    "security.middleware.api_key.ApiKeyMiddleware",
    "security.middleware.spine.SpineHeadersMiddleware",
    "security.middleware.bearer.BearerTokenMiddleware",
    # What the client may do is decided by the API's view (fhirapi.authorization), not here.
]

MIDDLEWARE = [
    # First: each request starts on a replica and stays on the primary once it has written.
    "config.middleware.ReadYourWritesMiddleware",
    "security.middleware.headers.SecurityHeadersMiddleware",
    *SECURITY_MIDDLEWARE,
    # Outside the session, CSRF and messages middleware, so it sees the cookies they set.
    "security.middleware.cookies.SecureCookiesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Marks request.user verified when the session holds a confirmed one-time-password device.
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it turns a lockout flagged during login into its response.
    "axes.middleware.AxesMiddleware",
]
# /fhir skips the middleware only the web admin needs (security/middleware/admin_only.py).
ADMIN_ONLY_MIDDLEWARE = {
    "django.contrib.sessions.middleware.SessionMiddleware": "AdminSession",
    "django.middleware.csrf.CsrfViewMiddleware": "AdminCsrf",
    "django.contrib.auth.middleware.AuthenticationMiddleware": "AdminAuthentication",
    "django_otp.middleware.OTPMiddleware": "AdminOTP",
    "django.contrib.messages.middleware.MessageMiddleware": "AdminMessages",
    "django.middleware.clickjacking.XFrameOptionsMiddleware": "AdminXFrameOptions",
}
MIDDLEWARE = [
    f"security.middleware.admin_only.{ADMIN_ONLY_MIDDLEWARE[name]}"
    if name in ADMIN_ONLY_MIDDLEWARE
    else name
    for name in MIDDLEWARE
]

# Axes first: it refuses a locked-out username and address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db(
        "DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'directory.sqlite3'}"
    ),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # An unreachable database must fail fast (503, common/outage.py), never hang a worker.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=3)
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite lets one writer in at a time. A deferred transaction that reads and then writes
    # cannot wait for the lock (SQLite refuses the upgrade at once: "database is locked"), so
    # concurrent writes failed instead of queueing; IMMEDIATE takes the write lock at BEGIN and
    # waits for it (sqlite3's busy timeout, 5 s), and a conflict is then found and answered as
    # on PostgreSQL. Tested on a database file: tests/directory/test_sqlite_writers.py.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("transaction_mode", "IMMEDIATE")
# A kept-alive connection is tested before each request reuses it, so after the database
# restarts the first request of every worker does not fail on a dead connection; without a round
# trip when it was in use within the last second (config/postgresql/base.py).
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# Seconds a client is told to wait (Retry-After) when the service answers 503.
RETRY_AFTER_SECONDS = env.int("RETRY_AFTER_SECONDS", default=5)
# One NPI identifies one Practitioner or Organization (directory/identifiers.py); off, records may
# share one (the Plan-Net IG's own examples do) and the admin's duplicates page shows them.
FHIR_UNIQUE_NPI = env.bool("FHIR_UNIQUE_NPI", default=True)
# Read scale-out (config/dbrouter.py): streaming replicas for FHIR reads, comma-separated URLs.
DATABASE_REPLICA_URLS = env.list("DATABASE_REPLICA_URLS", default=[])
for _number, _url in enumerate(DATABASE_REPLICA_URLS, start=1):
    _replica = env.db_url_config(_url)
    # A replica that does not answer must fail fast so reads fall back to the primary.
    _replica["OPTIONS"] = {"connect_timeout": 2, **_replica.get("OPTIONS", {})}
    _replica["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    _replica["TEST"] = {"MIRROR": "default"}  # tests read the primary's test database
    DATABASES[f"replica{_number}"] = _replica
DATABASE_ROUTERS = ["config.dbrouter.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = False

# App static files (admin, django-otp, security/static) are found by the app-directories finder;
# `collectstatic` gathers them into STATIC_ROOT for the front server in production.
STATIC_URL = env.str("STATIC_URL", default="/static/")
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "var" / "static")

# The API is not a browser application: no trailing-slash redirects that would turn POST into GET.
APPEND_SLASH = False

SECURE_CONTENT_TYPE_NOSNIFF = True
# Behind a TLS terminator that always sets X-Forwarded-Proto (deploy/nginx does), links in Bundles
# and Location headers must say https; off by default so a direct client cannot choose the scheme.
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=ENVIRONMENT == "prod")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# The admin is only ever used first-party: no cross-site request needs the session or CSRF cookie.
SESSION_COOKIE_SAMESITE = "Strict"
CSRF_COOKIE_SAMESITE = "Strict"
CSRF_COOKIE_HTTPONLY = True
# A short idle timeout: every request pushes the expiry forward, an idle session simply lapses.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=15 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# ---------------------------------------------------------------- web admin sign-in
# Staff passwords guard the whole directory: long, not common, not like the username.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("ADMIN_PASSWORD_MIN_LENGTH", default=12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes: lock a username at one address after repeated failures (README, "Web admin").
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
# Username and address together: one attacker cannot lock every admin out from elsewhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = env.bool("AXES_RESET_ON_SUCCESS", default=True)
AXES_LOCKOUT_CALLABLE = "security.lockout.locked_out_response"
# Behind nginx REMOTE_ADDR is nginx: count failures against the client it forwarded for.
AXES_CLIENT_IP_CALLABLE = "security.client_ip.client_ip_address"
# Masked in attempt records and logs (axes always masks the password); a one-time code is
# short-lived but still a credential.
AXES_SENSITIVE_PARAMETERS = ["otp_token", "csrfmiddlewaretoken"]
# Two-factor sign-in to the admin (security/twofactor): unset means required exactly in prod;
# true or false overrides, and production refuses to start with false (security.E009).
ADMIN_REQUIRE_OTP = env.bool("ADMIN_REQUIRE_OTP", default=None)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="FHIR directory")
# An existing device's secret (key, QR code) is never shown again, even to superusers: whoever
# reads it can pass that user's second factor. Enrolment prints it once (addtotpdevice).
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["fhirapi.renderers.FHIRJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["fhirapi.parsers.FHIRJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "fhirapi.negotiation.FHIRContentNegotiation",
    "EXCEPTION_HANDLER": "fhirapi.errors.exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "URL_FORMAT_OVERRIDE": None,
}

# FHIR service behaviour.
FHIR_BASE_URL = env.str("FHIR_BASE_URL", default="")  # empty: derived from each request
FHIR_DEFAULT_COUNT = env.int("FHIR_DEFAULT_COUNT", default=20)
FHIR_MAX_COUNT = env.int("FHIR_MAX_COUNT", default=200)
FHIR_MAX_INCLUDES = env.int("FHIR_MAX_INCLUDES", default=1000)
# Possible duplicates (directory/duplicates.py): a contact point shared by more records than this
# (a switchboard) does not pair them; the admin page shows at most this many pairs.
DUPLICATES_MAX_GROUP = env.int("DUPLICATES_MAX_GROUP", default=25)
DUPLICATES_MAX_PAIRS = env.int("DUPLICATES_MAX_PAIRS", default=200)
# Without _total, matches are counted exactly up to this many; above it Bundle.total is left out.
FHIR_TOTAL_EXACT_LIMIT = env.int("FHIR_TOTAL_EXACT_LIMIT", default=10_000)
# Search statements kept compiled, by shape, per process and database (search/compiled.py); 0 none.
FHIR_SEARCH_SHAPE_CACHE = env.int("FHIR_SEARCH_SHAPE_CACHE", default=512)
# `near=lat|lon` without a distance: what counts as near (FHIR leaves it to the server).
FHIR_NEAR_DEFAULT_DISTANCE_KM = env.float("FHIR_NEAR_DEFAULT_DISTANCE_KM", default=50.0)
# Location boundaries (GeoJSON, the `contains` search): vertices one boundary may have at most;
# each is indexed and a larger one is refused on write (a county outline is a few thousand).
FHIR_BOUNDARY_MAX_VERTICES = env.int("FHIR_BOUNDARY_MAX_VERTICES", default=100_000)
FHIR_SEARCH_SNAPSHOT_TTL = env.int("FHIR_SEARCH_SNAPSHOT_TTL", default=3600)
# A client repeating a sorted search this soon, with nothing written since, reuses its snapshot.
FHIR_SEARCH_SNAPSHOT_REUSE_SECONDS = env.int("FHIR_SEARCH_SNAPSHOT_REUSE_SECONDS", default=30)
# Live snapshots per client; past it the client's oldest is evicted (its cursors must re-search).
FHIR_SEARCH_SNAPSHOTS_PER_CLIENT = env.int("FHIR_SEARCH_SNAPSHOTS_PER_CLIENT", default=20)
FHIR_MAX_BODY_BYTES = env.int("FHIR_MAX_BODY_BYTES", default=1_048_576)
DATA_UPLOAD_MAX_MEMORY_SIZE = FHIR_MAX_BODY_BYTES
# Entries of one batch or transaction Bundle posted to the base; more are refused with 413.
FHIR_MAX_BUNDLE_ENTRIES = env.int("FHIR_MAX_BUNDLE_ENTRIES", default=1000)
# Deeper JSON bodies are refused before parsing (parsers recurse per level); FHIR needs ~a dozen.
FHIR_MAX_JSON_DEPTH = env.int("FHIR_MAX_JSON_DEPTH", default=64)
# Custom search parameters (directory/customparams.py): each worker checks for another worker's
# SearchParameter writes at most this often; the staleness bound, and a reindex job's head start.
SEARCHPARAM_REFRESH_SECONDS = env.float("SEARCHPARAM_REFRESH_SECONDS", default=5.0)

# ---------------------------------------------------------------- per-client limits (fhirapi)
# Keyed by API client (else certificate, else address); over a limit: 429 with Retry-After.
RATE_LIMIT_PER_MINUTE = env.int("RATE_LIMIT_PER_MINUTE", default=600)  # sustained; 0 = off
RATE_LIMIT_BURST = env.int("RATE_LIMIT_BURST", default=100)  # requests at once above that
RATE_LIMIT_CONCURRENT = env.int("RATE_LIMIT_CONCURRENT", default=4)  # in flight; 0 = off
# An in-flight slot frees itself after this long, should its worker die mid-request (gunicorn
# kills a worker stuck past GUNICORN_TIMEOUT, 30 s by default).
RATE_LIMIT_SLOT_SECONDS = env.int("RATE_LIMIT_SLOT_SECONDS", default=60)
# Shared by every worker and host when set (redis://127.0.0.1:6379/0); else per process.
RATE_LIMIT_REDIS_URL = env.str("RATE_LIMIT_REDIS_URL", default="")
RATE_LIMIT_KEY_PREFIX = env.str("RATE_LIMIT_KEY_PREFIX", default="fhir-directory:limits:")
# PostgreSQL cancels any statement of the web application running longer (0 = no limit), so one
# costly search cannot hold a worker; bulk-loading commands lift it for their own connection.
# Below GUNICORN_TIMEOUT, so the client gets an OperationOutcome before the worker is killed.
FHIR_STATEMENT_TIMEOUT_MS = env.int("FHIR_STATEMENT_TIMEOUT_MS", default=15_000)
if FHIR_STATEMENT_TIMEOUT_MS > 0:
    for _database in DATABASES.values():
        if _database["ENGINE"] == "django.db.backends.postgresql":
            _options = _database.setdefault("OPTIONS", {})
            _timeout = f"-c statement_timeout={FHIR_STATEMENT_TIMEOUT_MS}"
            _options["options"] = f"{_options.get('options', '')} {_timeout}".strip()
# Django's backend with a cheaper health check of kept-alive connections (issue 10).
for _database in DATABASES.values():
    if _database["ENGINE"] == "django.db.backends.postgresql":
        _database["ENGINE"] = "config.postgresql"

# ---------------------------------------------------------------- transport security (security/)
# Checks run in this order on /fhir requests; see README "Security checks".
# dev: client certificates optional (API keys still required); test and prod: everything enforced.
# Who may pass a client certificate header: CIDRs, and "unix" for a unix-socket upstream. Not
# loopback by default: every user and process on the host can open a TCP connection to it, while
# a unix socket can be restricted to the TLS terminator (production refuses loopback, E010).
SECURITY_TRUSTED_PROXIES = env.list("SECURITY_TRUSTED_PROXIES", default=["unix"])
# How the TLS terminator passes the certificate: nginx | ingress-nginx | envoy | traefik | aws-alb
SECURITY_CLIENT_CERT_FORMAT = env.str("SECURITY_CLIENT_CERT_FORMAT", default="nginx")
SECURITY_REQUIRE_CLIENT_CERT = env.bool(
    "SECURITY_REQUIRE_CLIENT_CERT", default=ENVIRONMENT != "dev"
)
SECURITY_API_KEY_HEADER = env.str("SECURITY_API_KEY_HEADER", default="X-API-Key")
SECURITY_API_KEY_QUERY_PARAM = env.str("SECURITY_API_KEY_QUERY_PARAM", default="apikey")
# HMAC key for API key hashes; separate from SECRET_KEY so either can rotate independently.
SECURITY_API_KEY_PEPPER = env.str("SECURITY_API_KEY_PEPPER", default=SECRET_KEY)
SECURITY_REQUIRE_BEARER = env.bool("SECURITY_REQUIRE_BEARER", default=True)
# JSON file: [{"issuer": "...", "audience": "...", "jwks_file": "..."}]; several issuers allowed.
SECURITY_JWT_ISSUERS_FILE = env.str("SECURITY_JWT_ISSUERS_FILE", default="")
SECURITY_JWT_ALGORITHMS = env.list("SECURITY_JWT_ALGORITHMS", default=["RS256", "ES256"])
SECURITY_JWT_LEEWAY_SECONDS = env.int("SECURITY_JWT_LEEWAY_SECONDS", default=60)
SECURITY_JWT_MAX_LIFETIME_SECONDS = env.int("SECURITY_JWT_MAX_LIFETIME_SECONDS", default=3600)
# smart | nhs | both: which scope claim conventions are read.
SECURITY_SCOPE_CONVENTION = env.str("SECURITY_SCOPE_CONVENTION", default="both")
# Interaction -> permission table overriding security.scopes.DEFAULT_SCOPE_RULES; None = defaults.
SECURITY_SCOPE_RULES = None
SECURITY_SPINE_PROFILE = env.bool("SECURITY_SPINE_PROFILE", default=False)
SECURITY_SPINE_ASID = env.str("SECURITY_SPINE_ASID", default="")
# How long a process may serve from its cached view of trust anchors, CRLs and key states; a
# retired key stops working everywhere within this many seconds.
SECURITY_CACHE_SECONDS = env.int("SECURITY_CACHE_SECONDS", default=5)
# A key's last-used time and address are written at most this often, not on every request.
SECURITY_KEY_LAST_USED_INTERVAL = env.int("SECURITY_KEY_LAST_USED_INTERVAL", default=60)
SECURITY_CRL_FETCH_TIMEOUT = env.int("SECURITY_CRL_FETCH_TIMEOUT", default=10)
# Paths that no check applies to: health probes, which reveal nothing.
SECURITY_PUBLIC_PATHS = env.list("SECURITY_PUBLIC_PATHS", default=["/healthz", "/readyz"])
# Private key files the service reads; production start-up refuses group/other-readable ones.
SECURITY_PRIVATE_KEY_FILES = env.list("SECURITY_PRIVATE_KEY_FILES", default=[])

# ---------------------------------------------------------------- built-in authorization server
# security/oauth: SMART Backend Services tokens and UDAP registration. The server's public origin
# (e.g. https://directory.example.org); empty turns the authorization server off. Token endpoint,
# issuer and the tokens' audience are derived from it, never from a request's Host header.
OAUTH_SERVER_URL = env.str("OAUTH_SERVER_URL", default="").rstrip("/")
# Access-token lifetime; at most 300 seconds (longer values are cut to 300).
OAUTH_ACCESS_TOKEN_LIFETIME = env.int("OAUTH_ACCESS_TOKEN_LIFETIME", default=300)
# Encrypts the signing keys stored in the database; separate from SECRET_KEY so it can differ.
OAUTH_SIGNING_KEY_SECRET = env.str("OAUTH_SIGNING_KEY_SECRET", default=SECRET_KEY)
# The most a UDAP-registered client is allowed; an administrator can widen it afterwards.
OAUTH_REGISTRATION_SCOPES = env.str("OAUTH_REGISTRATION_SCOPES", default="system/*.rs")
# UDAP signed metadata: the server's certificate (PEM, leaf first, then its chain) and key.
OAUTH_UDAP_CERTIFICATE_FILE = env.str("OAUTH_UDAP_CERTIFICATE_FILE", default="")
OAUTH_UDAP_KEY_FILE = env.str("OAUTH_UDAP_KEY_FILE", default="")

# Every handler redacts API keys, bearer tokens and the key query parameter (security/redaction).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "security.redaction.RedactingFilter"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]},
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["require_debug_false", "redact"],
            "reporter_class": "security.reporting.RedactingExceptionReporter",
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django's own defaults give these loggers unfiltered handlers; replacing them sends their
        # records up to the redacting root handler instead.
        "django": {"handlers": ["mail_admins"], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "level": "INFO", "propagate": True},
    },
}
DEFAULT_EXCEPTION_REPORTER_FILTER = "security.reporting.RedactingExceptionReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "security.reporting.RedactingExceptionReporter"

# ---------------------------------------------------------------- bulk import ($import, issue 11)
# Where uploaded NDJSON and the per-job error files are kept while a job runs and until purged.
FHIR_IMPORT_SPOOL_DIR = env.str("FHIR_IMPORT_SPOOL_DIR", default=str(BASE_DIR / "var" / "import"))
# Largest NDJSON upload (or fetched input) accepted by `$import`; larger is refused with 413.
FHIR_IMPORT_MAX_BYTES = env.int("FHIR_IMPORT_MAX_BYTES", default=1 << 30)
# Resources per transaction; a failing batch is retried line by line in savepoints.
FHIR_IMPORT_BATCH_SIZE = env.int("FHIR_IMPORT_BATCH_SIZE", default=1000)
# `input.url` prefixes the server may fetch (https only, no redirects). Empty: every URL refused,
# because fetching a client-named URL from inside the network is server-side request forgery.
FHIR_IMPORT_ALLOWED_URLS = env.list("FHIR_IMPORT_ALLOWED_URLS", default=[])
# Finished jobs (and their files) older than this are removed by `manage.py purgeimports`.
FHIR_IMPORT_KEEP_SECONDS = env.int("FHIR_IMPORT_KEEP_SECONDS", default=7 * 24 * 3600)

# FHIR Bulk Data `$export` (fhirapi/bulk.py, directory/export.py).
# Where the NDJSON files go: <dir>/<job key>/<Type>.ndjson, directories 0700, files 0600.
BULK_EXPORT_DIR = env.path("BULK_EXPORT_DIR", default=BASE_DIR / "var" / "exports")
# A job and its files are deleted this long after it finished (or was asked, if it never ran).
BULK_EXPORT_RETENTION_SECONDS = env.int("BULK_EXPORT_RETENTION_SECONDS", default=3600)
# Run a kicked-off job in a thread of the worker that took it; off, `manage.py runexports` does.
BULK_EXPORT_RUN_IN_THREAD = env.bool("BULK_EXPORT_RUN_IN_THREAD", default=True)
# Jobs one client may have queued or running at once; more are refused with 429.
BULK_EXPORT_MAX_ACTIVE_PER_CLIENT = env.int("BULK_EXPORT_MAX_ACTIVE_PER_CLIENT", default=2)

# ---------------------------------------------------------------- subscriptions (subscriptions/)
# Topic-based subscriptions (Subscriptions Backport IG), delivered by `manage.py
# deliversubscriptions`. Topic canonical URLs are built on this base (never fetched).
SUBSCRIPTIONS_TOPIC_BASE = env.str(
    "SUBSCRIPTIONS_TOPIC_BASE", default="http://fhir-directory.invalid/SubscriptionTopic"
)
# The public FHIR base that notifications name resources by; empty: relative references.
SUBSCRIPTIONS_FHIR_BASE = env.str(
    "SUBSCRIPTIONS_FHIR_BASE", default=f"{OAUTH_SERVER_URL}/fhir" if OAUTH_SERVER_URL else ""
)
# Plain http to a loopback address (tests, local development only; refused in production).
SUBSCRIPTIONS_ALLOW_HTTP_LOOPBACK = env.bool("SUBSCRIPTIONS_ALLOW_HTTP_LOOPBACK", default=False)
# CIDR ranges a channel endpoint may resolve to although private (e.g. an internal subscriber).
SUBSCRIPTIONS_ENDPOINT_ALLOWLIST = env.list("SUBSCRIPTIONS_ENDPOINT_ALLOWLIST", default=[])
# CA bundle to verify subscribers' certificates with; empty: the system's.
SUBSCRIPTIONS_CA_FILE = env.str("SUBSCRIPTIONS_CA_FILE", default="")
# Encrypts the channel headers stored in the database; separate from SECRET_KEY so it can differ.
SUBSCRIPTIONS_HEADER_SECRET = env.str("SUBSCRIPTIONS_HEADER_SECRET", default=SECRET_KEY)
SUBSCRIPTIONS_TIMEOUT_SECONDS = env.int("SUBSCRIPTIONS_TIMEOUT_SECONDS", default=10)
SUBSCRIPTIONS_MAX_COUNT = env.int("SUBSCRIPTIONS_MAX_COUNT", default=20)  # events a notification
SUBSCRIPTIONS_MIN_HEARTBEAT_SECONDS = env.int("SUBSCRIPTIONS_MIN_HEARTBEAT_SECONDS", default=10)
SUBSCRIPTIONS_RETRY_BASE_SECONDS = env.float("SUBSCRIPTIONS_RETRY_BASE_SECONDS", default=5.0)
SUBSCRIPTIONS_RETRY_MAX_SECONDS = env.float("SUBSCRIPTIONS_RETRY_MAX_SECONDS", default=3600.0)
# Consecutive failed deliveries before a subscription is `error` (about a day with the above).
SUBSCRIPTIONS_MAX_FAILURES = env.int("SUBSCRIPTIONS_MAX_FAILURES", default=30)
SUBSCRIPTIONS_PER_CLIENT = env.int("SUBSCRIPTIONS_PER_CLIENT", default=100)
# Delivered events are kept this long for `Subscription/[id]/$events`, then purged by the worker
# (0: deleted as soon as delivered, and $events answers nothing).
SUBSCRIPTIONS_EVENTS_RETENTION_SECONDS = env.int(
    "SUBSCRIPTIONS_EVENTS_RETENTION_SECONDS", default=7 * 24 * 3600
)
SUBSCRIPTIONS_EVENTS_PAGE_SIZE = env.int("SUBSCRIPTIONS_EVENTS_PAGE_SIZE", default=100)
# The email channel (Django's EMAIL_* settings send it); off: `channel.type = email` is a 422.
SUBSCRIPTION_EMAIL_ENABLED = env.bool("SUBSCRIPTION_EMAIL_ENABLED", default=False)
SUBSCRIPTIONS_EMAIL_FROM = env.str("SUBSCRIPTIONS_EMAIL_FROM", default="")
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
