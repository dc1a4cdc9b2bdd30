"""WSGI entry point used by gunicorn; a production process with an unsafe config never serves."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# After setup, so the checks can read settings and the database; raises in prod only.
from security.checks import refuse_unsafe_production_start  # noqa: E402

refuse_unsafe_production_start()
