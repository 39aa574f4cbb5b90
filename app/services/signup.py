"""Sign-up, with an address its owner controls.

`POST /v1/signup` creates nothing yet: it records a sign-up request and mails a link to the
address. Whether the address is free or already has an account, the answer is the same 202
after the same work (a password hash, one request row, one message), so the endpoint does not
tell which addresses are registered. Only the mail differs:

- a free address gets "confirm your address": the link, with the password chosen at sign-up,
  creates the account and its agency (`complete`), and signs the person in;
- a registered address gets "someone tried to sign up with your address", with links to sign
  in and to reset the password, and the same confirmation link, which, with that account's
  password, creates the new agency for the existing account.

Asking again for the password on confirmation means the person who confirms is the person who
signed up, not only whoever reads the mailbox: someone signing up with another's address
cannot leave them an account whose password the intruder knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app import tenancy
from app.auth.passwords import hash_password, verify_password
from app.auth.secrets import digest, new_secret
from app.errors import Conflict, NotFound, Unauthorized
from app.extensions import db
from app.ids import new_id
from app.models import Agency, AgencyMembership, AgencyRole, SignupRequest, User
from app.models.base import utcnow
from app.services import audit, identity, outbox


@dataclass
class SignupResult:
    agency: Agency
    user: User
    tokens: identity.TokenPair


def request_signup(*, agency_name: str, name: str, email: str, password: str) -> None:
    """Record the request and mail the address; the same work whether it is free or not."""
    password_hash = hash_password(password)
    registered = db.session.scalar(select(User.id).where(User.email == email)) is not None
    token = new_secret("sgn")
    ttl = timedelta(seconds=current_app.config["SIGNUP_VERIFICATION_TTL_SECONDS"])
    expires_at = utcnow() + ttl
    db.session.add(
        SignupRequest(
            email=email,
            agency_name=agency_name,
            name=name,
            password_hash=password_hash,
            token_hash=digest(token),
            expires_at=expires_at,
        )
    )
    context = {
        "name": name,
        "agency_name": agency_name,
        "verify_url": outbox.link("/verify-email", token=token),
        "expires_at": outbox.when(expires_at),
    }
    if registered:
        frontend = current_app.config["FRONTEND_BASE_URL"]
        context.update(
            reset_url=outbox.link("/reset-password"),
            # Relais serves no sign-in page of its own; a front end has one.
            sign_in_url=outbox.link("/sign-in") if frontend else None,
        )
    outbox.send("signup_taken" if registered else "signup_verify", to=email, context=context)
    db.session.commit()


def check(token: str) -> SignupRequest:
    """The sign-up this link confirms, if it still can; else the problem to show."""
    request = db.session.scalar(
        select(SignupRequest).where(SignupRequest.token_hash == digest(token))
    )
    if request is None:
        raise NotFound("This confirmation link is not valid; sign up again.")
    if request.completed_at is not None:
        raise Conflict("This sign-up is already confirmed; sign in instead.")
    if request.expires_at <= utcnow():
        raise Conflict("This confirmation link has expired; sign up again.")
    return request


def account_exists(request: SignupRequest) -> bool:
    """For the confirmation page, which asks for the right password (whoever holds the link
    controls the address, so telling them costs nothing)."""
    return db.session.scalar(select(User.id).where(User.email == request.email)) is not None


def complete(token: str, password: str, *, actor: audit.Actor) -> SignupResult:
    """Confirm the address: create the agency (and the account, if new) and sign in. `actor`:
    the request (anonymous until then), recorded as the person who signs up."""
    request = check(token)
    user = db.session.scalar(select(User).where(User.email == request.email))
    if user is None:
        if not verify_password(request.password_hash, password):
            raise Unauthorized("This is not the password you chose when you signed up.")
        user = User(email=request.email, name=request.name, password_hash=request.password_hash)
        db.session.add(user)
    elif not verify_password(user.password_hash, password):
        raise Unauthorized(
            "This address already has an account: give its password to create the agency."
        )
    spent = db.session.execute(
        update(SignupRequest)
        .where(SignupRequest.id == request.id, SignupRequest.completed_at.is_(None))
        .values(completed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:
        db.session.rollback()
        raise Conflict("This sign-up is already confirmed; sign in instead.")
    try:
        db.session.flush()
    except IntegrityError:  # another request for this address was confirmed at the same moment
        db.session.rollback()
        raise Conflict("An account with this address was just created; sign in instead.") from None
    agency = create_agency(request.agency_name, user, actor=actor)
    tokens = identity.start_session_for(user, agency.id)
    db.session.commit()
    return SignupResult(agency=agency, user=user, tokens=tokens)


def create_agency(agency_name: str, owner: User, *, actor: audit.Actor) -> Agency:
    """An agency with `owner` as its owner, in the caller's transaction (also `relais demo`);
    recorded as made by the owner, through `actor`'s request."""
    agency = Agency(id=new_id("agy"), name=agency_name)
    tenancy.enter_agency(agency.id)
    db.session.add(agency)
    db.session.flush()
    db.session.add(AgencyMembership(agency_id=agency.id, user_id=owner.id, role=AgencyRole.OWNER))
    audit.record(
        "agency.created",
        agency_id=agency.id,
        target_type="agency",
        target_id=agency.id,
        actor=actor.as_user(owner.id),
    )
    db.session.flush()
    return agency
