"""Sign-in, refresh-token rotation and sign-out (sign-up is app/services/signup.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import Update, select, update

from app import tenancy
from app.auth.passwords import burn_verification_time, hash_password, verify_password
from app.auth.secrets import digest, new_secret
from app.auth.tokens import issue_access_token
from app.errors import Unauthorized, ValidationFailed
from app.extensions import db
from app.ids import new_id
from app.models import AgencyMembership, BrandMembership, RefreshToken, User
from app.models.base import utcnow
from app.services import audit, outbox, throttle


@dataclass
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    agency_id: str
    token_type: str = "Bearer"


@tenancy.system_lookup(tenancy.SystemLookup.SIGN_IN)
def agencies_of(user_id: str) -> list[str]:
    """Agencies the user can act in: as staff, or as a brand member (clients)."""
    with tenancy.system_scope():
        staff = db.session.scalars(
            select(AgencyMembership.agency_id)
            .where(AgencyMembership.user_id == user_id)
            .order_by(AgencyMembership.created_at)
        ).all()
        brand = db.session.scalars(
            select(BrandMembership.agency_id)
            .where(BrandMembership.user_id == user_id)
            .order_by(BrandMembership.created_at)
        ).all()
    seen: list[str] = []
    for agency_id in [*staff, *brand]:
        if agency_id not in seen:
            seen.append(agency_id)
    return seen


def login(*, email: str, password: str, agency_id: str | None, actor: audit.Actor) -> TokenPair:
    """Sign in. `actor`: the request (its address counts the attempts)."""
    throttle.begin_attempt(email, actor.ip)
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        burn_verification_time(password)
        throttle.record_failure(email, None, actor=actor)
        raise Unauthorized("The e-mail or the password is wrong.")
    if not verify_password(user.password_hash, password):
        throttle.record_failure(email, user, actor=actor)
        raise Unauthorized("The e-mail or the password is wrong.")
    # The password is right: whatever follows (a wrong agency_id, say) is no guess.
    throttle.record_success(email, actor.ip)
    agencies = agencies_of(user.id)
    if not agencies:
        raise Unauthorized("This account belongs to no agency any more.")
    if agency_id is None:
        agency_id = agencies[0]
    elif agency_id not in agencies:
        raise ValidationFailed(
            "You are not a member of this agency.",
            errors={"agency_id": ["Not one of your agencies."]},
        )
    user.last_login_at = utcnow()
    tokens = start_session_for(user, agency_id)
    db.session.commit()
    return tokens


def change_password(
    user_id: str,
    agency_id: str,
    *,
    current_password: str,
    new_password: str,
    actor: audit.Actor,
) -> TokenPair:
    """Set a new password, proven by the current one (throttled like sign-in). Every session of
    the person, in every agency, ends; the caller gets a fresh one in the agency they act in."""
    user = db.session.get(User, user_id)
    throttle.begin_attempt(user.email, actor.ip)
    if not verify_password(user.password_hash, current_password):
        throttle.record_failure(user.email, user, actor=actor)
        # Not a 401: the caller is signed in, and a client would take 401 as "sign in again".
        raise ValidationFailed(
            "Your current password is wrong.", errors={"current_password": ["Wrong password."]}
        )
    throttle.record_success(user.email, actor.ip)
    user.password_hash = hash_password(new_password)
    revoke_sessions(user.id)
    outbox.send_security_notice(user, "password_changed", changed_at=outbox.when(utcnow()))
    audit.record(
        "user.password_changed",
        actor=actor,
        agency_id=agency_id,
        target_type="user",
        target_id=user.id,
    )
    tokens = start_session_for(user, agency_id)
    db.session.commit()
    return tokens


def start_session_for(user: User, agency_id: str) -> TokenPair:
    return _issue_pair(user.id, agency_id, family_id=new_id("ses"))


def _issue_pair(user_id: str, agency_id: str, *, family_id: str) -> TokenPair:
    secret = new_secret("rt")
    ttl = timedelta(seconds=current_app.config["REFRESH_TOKEN_TTL_SECONDS"])
    tenancy.enter_agency(agency_id)
    db.session.add(
        RefreshToken(
            agency_id=agency_id,
            user_id=user_id,
            family_id=family_id,
            token_hash=digest(secret),
            expires_at=utcnow() + ttl,
        )
    )
    access, expires_in = issue_access_token(user_id, agency_id, family_id)
    return TokenPair(
        access_token=access, expires_in=expires_in, refresh_token=secret, agency_id=agency_id
    )


@tenancy.system_lookup(tenancy.SystemLookup.AUTHENTICATION)
def refresh(refresh_token: str) -> TokenPair:
    """Rotate: the presented token is spent and a new pair is issued.

    A token presented twice means it was copied: the whole session is revoked.
    """
    now = utcnow()
    with tenancy.system_scope():
        token = db.session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == digest(refresh_token))
        )
        if token is None or token.revoked_at is not None or token.expires_at <= now:
            raise Unauthorized("The refresh token is invalid, expired or revoked; sign in again.")
        if token.used_at is not None:
            _revoke_family(token.family_id)
            db.session.commit()
            raise Unauthorized(
                "This refresh token was already used; the session is revoked for safety. "
                "Sign in again."
            )
        # Compare-and-set: of two concurrent refreshes with one token, only one wins.
        spent = db.session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if spent.rowcount != 1:
            db.session.rollback()
            raise Unauthorized("The refresh token was just used; sign in again.")
    if token.agency_id not in agencies_of(token.user_id):
        db.session.rollback()
        raise Unauthorized("You are no longer a member of this agency.")
    pair = _issue_pair(token.user_id, token.agency_id, family_id=token.family_id)
    db.session.commit()
    return pair


@tenancy.system_lookup(tenancy.SystemLookup.AUTHENTICATION)
def logout(refresh_token: str) -> None:
    """Revoke the session the refresh token belongs to. Unknown tokens are ignored."""
    with tenancy.system_scope():
        token = db.session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == digest(refresh_token))
        )
        if token is not None:
            _revoke_family(token.family_id)
        db.session.commit()


def revoke_sessions(user_id: str, *, agency_id: str | None = None) -> None:
    """End every session of a person, in one agency or (None) in all of them: their refresh
    tokens die, and their access tokens stop working at the next request, in every process
    (app/auth/principal.py checks the session). For a password change or reset, and for
    someone who loses their place in an agency (the caller's). The caller commits."""
    if agency_id is None:
        _revoke_sessions_everywhere(user_id)
        return
    stmt = tenancy.scoped_update(RefreshToken).where(RefreshToken.agency_id == agency_id)
    db.session.execute(_revoking_sessions_of(stmt, user_id))


@tenancy.system_lookup(tenancy.SystemLookup.SESSIONS)
def _revoke_sessions_everywhere(user_id: str) -> None:
    with tenancy.system_scope():
        db.session.execute(_revoking_sessions_of(update(RefreshToken), user_id))


def _revoking_sessions_of(stmt: Update, user_id: str) -> Update:
    return (
        stmt.where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )


@tenancy.system_lookup(tenancy.SystemLookup.AUTHENTICATION)
def _revoke_family(family_id: str) -> None:
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
