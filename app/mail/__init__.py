"""E-mail: a template and its context made into a message, and the transport that sends it.

What to send, and when, is the outbox's business (app/services/outbox.py): a service records a
message in its own transaction and a worker sends it once that transaction has committed. This
package knows only how to render (`render.py`, templates under `templates/`) and how to hand a
message to a mail server or to the mail directory (`transport.py`).
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Refuse an SMTP_URL we cannot use (production without one is refused with the other
    settings, in app/startup.py)."""
    from app.mail.transport import SmtpSettings

    if app.config.get("SMTP_URL"):
        SmtpSettings.parse(app.config["SMTP_URL"])  # raises with a clear message
