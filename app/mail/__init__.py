"""E-mail: a template and its context made into a message, and the transport that sends it.

What to send, and when, is the outbox's business (app/services/outbox.py): a service records a
message in its own transaction and a worker sends it once that transaction has committed. This
package knows only how to render (`render.py`, templates under `templates/`) and how to hand a
message to a mail server or to the mail directory (`transport.py`).
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Refuse a configuration that would lose mail: production with no mail server (links to
    accept invitations and reset passwords would never leave), or an SMTP_URL we cannot use."""
    from app.mail.transport import SmtpSettings

    if app.config.get("ENV") == "production":
        missing = [name for name in ("SMTP_URL", "MAIL_FROM") if not app.config.get(name)]
        if missing:
            raise RuntimeError(
                f"RELAIS_ENV=production needs {' and '.join(missing)}: invitations, sign-up "
                "confirmations and password resets go by e-mail. For example "
                "SMTP_URL=smtp://user:password@mail.example.com:587 and "
                "MAIL_FROM='Relais <relais@example.com>'."
            )
    if app.config.get("SMTP_URL"):
        SmtpSettings.parse(app.config["SMTP_URL"])  # raises with a clear message
