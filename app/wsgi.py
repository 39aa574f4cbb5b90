"""The WSGI entry point: `gunicorn app.wsgi:app`.

It lives inside the package so that it is installed with it: after `pip install .` (or from a
wheel) gunicorn finds it from any working directory, with no checkout around.
"""

from app import create_app

app = create_app()
