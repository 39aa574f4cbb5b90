"""The WSGI entry point: `gunicorn app.wsgi:app`.

It lives inside the package so that it is installed with it: after `pip install .` (or from a
wheel) gunicorn finds it from any working directory, with no checkout around.
"""

from app import create_app
from app.startup import refuse_unsafe_database

app = create_app()
# In production, a superuser, BYPASSRLS or owner role stops gunicorn here ("Worker failed to
# boot"), before it serves anyone; /readyz checks again later.
refuse_unsafe_database(app.config)
