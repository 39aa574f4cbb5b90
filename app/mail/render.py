"""Templates to messages: a plain-text part and an HTML part, both from `templates/`.

Each kind of mail is a pair of files, `<name>.txt` and `<name>.html`, extending the layouts
`base.txt` and `base.html`, and a subject here. The HTML is escaped automatically, the text is
not (it is not markup). Links are absolute and already built by the service that records the
message; the HTML uses no external asset (no image, no font, no stylesheet), so a message reads
the same offline and tracks nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from pathlib import Path
from typing import Any

import jinja2

from app.models.base import utcnow

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

# Subjects, one per template (a line, rendered with the same context).
SUBJECTS: dict[str, str] = {
    "invitation": "{{ inviter_name or 'Someone' }} invites you to {{ agency_name }} on Relais",
    "signup_verify": "Confirm your address to create {{ agency_name }} on Relais",
    "signup_taken": "Someone tried to sign up to Relais with your address",
    "password_reset": "Reset your Relais password",
    "password_changed": "Your Relais password was changed",
    "sign_in_failures": "Failed sign-ins to your Relais account",
    "webhook_disabled": "A webhook endpoint of {{ agency_name }} was disabled",
    "account_needs_reconnect": "Reconnect {{ handle }} on {{ network }}: its posts cannot go out",
}

# Lines longer than this are not sent as they are (RFC 5322 allows 998 octets).
_MAX_LINE_OCTETS = 998

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_subject_env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(template: str, context: dict[str, Any]) -> Rendered:
    if template not in SUBJECTS:
        raise ValueError(f"unknown mail template {template!r}")
    subject = _subject_env.from_string(SUBJECTS[template]).render(context)
    return Rendered(
        # A header is one line: a name with a newline must not start another header.
        subject=" ".join(subject.split()),
        text=_env.get_template(f"{template}.txt").render(context),
        html=_env.get_template(f"{template}.html").render(context),
    )


def build_message(
    rendered: Rendered, *, to: str, sender: str, message_id: str | None = None
) -> EmailMessage:
    """A multipart/alternative message: the text first, the HTML preferred by mail readers."""
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = format_datetime(utcnow())
    if message_id:
        message["Message-ID"] = f"<{message_id}@{sender_domain(sender)}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    message.set_content(rendered.text, cte=_transfer_encoding(rendered.text))
    message.add_alternative(rendered.html, subtype="html", cte=_transfer_encoding(rendered.html))
    return message


def sender_domain(sender: str) -> str:
    addresses = getaddresses([sender])
    address = addresses[0][1] if addresses else ""
    return Address(addr_spec=address).domain if "@" in address else "localhost"


def _transfer_encoding(body: str) -> str:
    """Plain 7bit or 8bit where lines allow, as most mailers send: links stay whole and
    readable in the raw message (quoted-printable would cut them with soft line breaks)."""
    if any(len(line.encode()) > _MAX_LINE_OCTETS for line in body.splitlines()):
        return "quoted-printable"
    return "7bit" if body.isascii() else "8bit"
