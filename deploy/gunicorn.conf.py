"""gunicorn settings; every value can be overridden from the environment."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Threaded workers keep HTTP/1.1 connections alive (nginx reuses them: upstream keepalive); the
# sync worker closes every connection after one response (GUNICORN_WORKER_CLASS=sync for it).
# Each thread holds its own database connection: workers x threads of them.
_WORKER_CLASSES = {
    "gthread": "fhirapi.gunicorn_workers.OutcomeThreadWorker",
    "sync": "fhirapi.gunicorn_workers.OutcomeSyncWorker",
}
_worker = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
worker_class = _WORKER_CLASSES[_worker]
# 1 for the sync worker: with more, gunicorn silently swaps any class named *SyncWorker for its
# plain threaded worker, which would answer its refusals with HTML pages.
threads = int(os.environ.get("GUNICORN_THREADS", "4")) if _worker == "gthread" else 1
# One process per core plus one; its threads overlap one request's database waits with another's.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Seconds an idle kept-alive connection stays open; above nginx's upstream keepalive_timeout
# (60 s), so nginx, not gunicorn, closes an idle one (deploy/nginx/fhir-directory.conf).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
# Bound request line and header sizes so an oversized request fails fast in the server.
# nginx refuses longer lines and fields first (large_client_header_buffers 4 8k): these are for
# requests that reach gunicorn directly, and they count fields, which nginx cannot.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
# Requests gunicorn refuses itself are answered with an OperationOutcome (both worker classes).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
# Credentials travel in headers and the query string: our logger class redacts every access atom
# and error record, and the format leaves out headers (referer, user agent, basic-auth user).
logger_class = "security.gunicorn_logging.RedactingGunicornLogger"
access_log_format = os.environ.get(
    "GUNICORN_ACCESS_LOG_FORMAT", '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms'
)
