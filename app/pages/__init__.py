"""Relais's own minimal pages, for people arriving from a link in a mail while no front end is
configured (FRONTEND_BASE_URL unset): accept an invitation, confirm a sign-up, reset a password.

- Plain server-rendered HTML: each form posts back to its own address, and the view calls the
  same service as the API, with the same schema, so the rules and the problem messages are the
  API's. No JavaScript, no external asset: one inline stylesheet, allowed by its hash.
- Cross-site requests: every form that changes something carries the link's secret token, so
  a forged post from another site, which cannot know it, does nothing (and whoever knows it can
  call the API anyway). The one form without a token, asking for a reset link, only makes
  Relais mail the address's owner, which anyone may ask through the API. No cookie is set, so
  there is no session for another site to ride.
- Never framed (CSP `frame-ancestors 'none'`, `X-Frame-Options: DENY`), never cached, and the
  token in the address never leaves in a Referer (`Referrer-Policy: no-referrer`).
- Outside /v1 and outside the OpenAPI spec: they are pages for people, not API. The README
  lists them, with the paths a front end must serve instead when FRONTEND_BASE_URL is set.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import marshmallow as ma
from flask import Blueprint, Response, render_template, request

from app.auth.principal import current_actor
from app.errors import AppError
from app.schemas.agency import InvitationAcceptSchema
from app.schemas.identity import (
    PasswordResetConfirmSchema,
    PasswordResetRequestSchema,
    SignupVerifySchema,
)
from app.services import invitations, password_reset, signup

blp = Blueprint("pages", __name__, template_folder="templates")

_STYLE = (Path(__file__).resolve().parent / "templates" / "pages" / "style.css").read_text()
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


@blp.after_request
def _page_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(f"pages/{template}", style=_STYLE, **context), status


def _problem(error: AppError) -> tuple[str, int]:
    return _page("problem.html", error.status, title=error.title, detail=error.detail)


def _form(schema: ma.Schema, *optional: str) -> dict[str, Any]:
    """The posted form through the API's schema (an empty optional field counts as absent)."""
    data = {k: v for k, v in request.form.items() if v != "" or k not in optional}
    return schema.load(data)


def _invalid(error: ma.ValidationError) -> dict[str, str]:
    messages = error.messages if isinstance(error.messages, dict) else {}
    return {field: " ".join(map(str, msgs)) for field, msgs in messages.items()}


def _token_page(
    check: Callable[[str], Any], render: Callable[..., tuple[str, int]]
) -> tuple[str, int]:
    """GET: the form for a link's token, or the problem with the link."""
    token = request.args.get("token", "")
    try:
        subject = check(token)
    except AppError as error:
        return _problem(error)
    return render(token, subject)


# -- accept an invitation ------------------------------------------------------------------------


def _invitation_form(token: str, view: invitations.InvitationView, **extra: Any):
    return _page("accept_invitation.html", token=token, view=view, **extra)


@blp.route("/accept-invitation", methods=["GET", "POST"])
def accept_invitation():
    if request.method == "GET":
        return _token_page(invitations.describe, _invitation_form)
    token = request.form.get("token", "")
    try:
        view = invitations.describe(token)
    except AppError as error:
        return _problem(error)
    try:
        data = _form(InvitationAcceptSchema(), "name")
        invitations.accept_invitation(
            data["token"], name=data.get("name"), password=data["password"], actor=current_actor()
        )
    except ma.ValidationError as error:
        return _invitation_form(token, view, errors=_invalid(error), status=422)
    except AppError as error:
        return _invitation_form(token, view, problem=error, status=error.status)
    return _page(
        "done.html",
        title="Welcome aboard",
        message=f"You joined {view.agency_name}. Sign in with {view.invitation.email} and "
        "your password.",
    )


# -- confirm a sign-up ---------------------------------------------------------------------------


def _signup_form(token: str, request_row: Any, **extra: Any):
    return _page(
        "verify_email.html",
        token=token,
        signup=request_row,
        account_exists=signup.account_exists(request_row),
        **extra,
    )


@blp.route("/verify-email", methods=["GET", "POST"])
def verify_email():
    if request.method == "GET":
        return _token_page(signup.check, _signup_form)
    token = request.form.get("token", "")
    try:
        request_row = signup.check(token)
    except AppError as error:
        return _problem(error)
    try:
        data = _form(SignupVerifySchema())
        result = signup.complete(data["token"], data["password"], actor=current_actor())
    except ma.ValidationError as error:
        return _signup_form(token, request_row, errors=_invalid(error), status=422)
    except AppError as error:
        return _signup_form(token, request_row, problem=error, status=error.status)
    return _page(
        "done.html",
        title="Your agency is ready",
        message=f"{result.agency.name} is created and you are its owner. Sign in with "
        f"{result.user.email} and your password.",
    )


# -- reset a password ----------------------------------------------------------------------------


def _reset_form(token: str, _reset: Any, **extra: Any):
    return _page("reset_password.html", token=token, **extra)


@blp.route("/reset-password", methods=["GET", "POST"])
def reset_password():
    token = request.values.get("token", "")
    if not token:  # no link yet: ask for one
        return _ask_for_reset()
    if request.method == "GET":
        return _token_page(password_reset.check, _reset_form)
    try:
        password_reset.check(token)
    except AppError as error:
        return _problem(error)
    try:
        data = _form(PasswordResetConfirmSchema())
        password_reset.confirm(data["token"], data["password"])
    except ma.ValidationError as error:
        return _reset_form(token, None, errors=_invalid(error), status=422)
    except AppError as error:
        return _reset_form(token, None, problem=error, status=error.status)
    return _page(
        "done.html",
        title="Password changed",
        message="Your new password is set, and every session was signed out. Sign in again "
        "with your new password.",
    )


def _ask_for_reset():
    if request.method == "GET":
        return _page("ask_reset.html")
    try:
        data = _form(PasswordResetRequestSchema())
    except ma.ValidationError as error:
        return _page("ask_reset.html", 422, errors=_invalid(error), email=request.form.get("email"))
    password_reset.request_reset(data["email"])
    return _page(
        "done.html",
        title="Check your mail",
        message="If an account has this address, a link to reset its password is on its way "
        "there. It works once, for an hour.",
    )
