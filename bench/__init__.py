"""`make bench`: the full server against a floor, side by side on one gunicorn (see README)."""
