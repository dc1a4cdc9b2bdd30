"""gunicorn settings; every value can be overridden from the environment."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# The usual sizing for synchronous workers: two per core plus one.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
# Bound request line and header sizes so an oversized request fails fast in the server.
# nginx refuses longer lines and fields first (large_client_header_buffers 4 8k): these are for
# requests that reach gunicorn directly, and they count fields, which nginx cannot.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
# Requests gunicorn refuses itself are answered with an OperationOutcome, not an HTML page.
worker_class = "fhirapi.gunicorn_workers.OutcomeSyncWorker"
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
# Credentials travel in headers and the query string: our logger class redacts every access atom
# and error record, and the format leaves out headers (referer, user agent, basic-auth user).
logger_class = "security.gunicorn_logging.RedactingGunicornLogger"
access_log_format = os.environ.get(
    "GUNICORN_ACCESS_LOG_FORMAT", '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms'
)
