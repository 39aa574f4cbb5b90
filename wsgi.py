"""`gunicorn wsgi:app` from a checkout; the packaged entry point is `app.wsgi:app`."""

from app.wsgi import app  # noqa: F401
