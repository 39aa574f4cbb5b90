"""Invitations: to the agency (staff) or to one brand (clients and brand staff)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Select, select

from app import tenancy
from app.auth import permissions
from app.auth.passwords import hash_password, verify_password
from app.auth.principal import Principal
from app.auth.secrets import digest, new_secret
from app.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from app.extensions import db
from app.models import (
    AgencyMembership,
    AgencyRole,
    Brand,
    BrandMembership,
    Invitation,
    User,
)
from app.models.base import utcnow
from app.services import audit, identity, outbox, throttle


def create_invitation(
    agency_id: str,
    *,
    email: str,
    agency_role: str | None,
    brand: Brand | None,
    brand_role: str | None,
    invited_by: str | None,
    inviter_role: AgencyRole | None,
    actor: audit.Actor,
) -> Invitation:
    """Record the invitation and mail its link to the address, and only there: whoever
    accepts must control the address (the inviter never sees the secret)."""
    if (agency_role is None) == (brand is None):
        raise ValidationFailed(
            "Invite either to the agency (agency_role) or to one brand (brand_id and brand_role).",
            errors={"agency_role": ["Give agency_role, or brand_id with brand_role."]},
        )
    if brand is not None and brand_role is None:
        raise ValidationFailed(
            "A brand invitation needs a brand_role.", errors={"brand_role": ["Required."]}
        )
    if agency_role == AgencyRole.OWNER and inviter_role != AgencyRole.OWNER:
        # Same rule as changing a role: admins must not mint owners (themselves, say).
        raise Forbidden("Only an owner can invite an owner.")
    token = new_secret("inv")
    ttl = timedelta(seconds=current_app.config["INVITATION_TTL_SECONDS"])
    invitation = Invitation(
        agency_id=agency_id,
        brand_id=brand.id if brand else None,
        email=email,
        agency_role=agency_role,
        brand_role=brand_role if brand else None,
        token_hash=digest(token),
        invited_by_user_id=invited_by,
        expires_at=utcnow() + ttl,
    )
    db.session.add(invitation)
    db.session.flush()
    audit.record(
        "invitation.created",
        actor=actor,
        agency_id=agency_id,
        brand_id=invitation.brand_id,
        target_type="invitation",
        target_id=invitation.id,
        data={"email": email, "agency_role": agency_role, "brand_role": invitation.brand_role},
    )
    _mail_invitation(invitation, token, brand)
    db.session.commit()
    return invitation


def list_statement(principal: Principal) -> Select[Any]:
    """The invitations `principal` manages, for the list; paged by id.

    The agency's owners and admins manage every invitation; a brand's managers, those to their
    brands. Anyone else manages none, and is refused (403) rather than shown an empty list.
    """
    stmt = tenancy.scoped_select(Invitation)
    if permissions.can(principal, "agency.invite"):
        return stmt
    managed = [b for b in principal.brand_roles if permissions.can(principal, "brand.invite", b)]
    if not managed:
        permissions.require(principal, "agency.invite")
    return stmt.where(Invitation.brand_id.in_(managed))


def _mail_invitation(invitation: Invitation, token: str, brand: Brand | None) -> None:
    agency = tenancy.current_agency()
    inviter = (
        db.session.get(User, invitation.invited_by_user_id)
        if invitation.invited_by_user_id
        else None
    )
    outbox.send(
        "invitation",
        to=invitation.email,
        context={
            "agency_name": agency.name,
            "brand_name": brand.name if brand else None,
            "role": invitation.brand_role or invitation.agency_role,
            "inviter_name": inviter.name if inviter else None,
            "accept_url": outbox.link("/accept-invitation", token=token),
            "expires_at": outbox.when(invitation.expires_at),
        },
    )


def revoke_invitation(invitation: Invitation, *, actor: audit.Actor) -> None:
    if invitation.accepted_at is not None:
        raise Conflict("This invitation was already accepted; remove the member instead.")
    if invitation.revoked_at is None:
        invitation.revoked_at = utcnow()
        audit.record(
            "invitation.revoked",
            actor=actor,
            agency_id=invitation.agency_id,
            brand_id=invitation.brand_id,
            target_type="invitation",
            target_id=invitation.id,
        )
        db.session.commit()


@dataclass
class InvitationView:
    """What the acceptance page shows: who invites, to what, and which form to fill."""

    invitation: Invitation
    agency_name: str
    brand_name: str | None
    account_exists: bool


@tenancy.system_lookup(tenancy.SystemLookup.INVITATION)
def check(token: str) -> Invitation:
    """The invitation of this token, if it can still be accepted; else the problem to show.
    Enters the invitation's agency."""
    with tenancy.system_scope():
        invitation = db.session.scalar(
            select(Invitation).where(Invitation.token_hash == digest(token))
        )
    if invitation is None or invitation.revoked_at is not None:
        raise NotFound("This invitation does not exist or was revoked.")
    if invitation.accepted_at is not None:
        raise Conflict("This invitation was already accepted; sign in instead.")
    if invitation.expires_at <= utcnow():
        raise Conflict("This invitation has expired; ask for a new one.")
    tenancy.enter_agency(invitation.agency_id)
    return invitation


def describe(token: str) -> InvitationView:
    """For the acceptance page. Whoever holds the token controls the invited address, so
    telling them whether it has an account already reveals nothing to a stranger."""
    invitation = check(token)
    agency = tenancy.current_agency()
    brand = (
        db.session.scalar(tenancy.scoped_select(Brand).where(Brand.id == invitation.brand_id))
        if invitation.brand_id
        else None
    )
    exists = db.session.scalar(select(User.id).where(User.email == invitation.email))
    return InvitationView(
        invitation=invitation,
        agency_name=agency.name,
        brand_name=brand.name if brand else None,
        account_exists=exists is not None,
    )


def accept_invitation(
    token: str, *, name: str | None, password: str, actor: audit.Actor
) -> identity.TokenPair:
    """The invitee sets a password (new account) or proves theirs (existing account). The
    token reached them by mail only, so they control the invited address. `actor`: the request
    (anonymous until then), recorded as the person who accepts."""
    invitation = check(token)
    user = db.session.scalar(select(User).where(User.email == invitation.email))
    if user is None:
        if not name:
            raise ValidationFailed(
                "Give your name to create your account.", errors={"name": ["Required."]}
            )
        user = User(email=invitation.email, name=name, password_hash=hash_password(password))
        db.session.add(user)
        db.session.flush()
    else:
        # A password check like sign-in, so it shares sign-in's counters: whoever invites an
        # e-mail holds the token and could otherwise guess that account's password freely.
        throttle.begin_attempt(user.email, actor.ip)
        if not verify_password(user.password_hash, password):
            throttle.record_failure(user.email, user, actor=actor)
            raise Unauthorized(
                "An account with this e-mail exists; give its password to accept the invitation."
            )
        throttle.record_success(user.email, actor.ip)
    if invitation.agency_role:
        membership = db.session.scalar(
            tenancy.scoped_select(AgencyMembership).where(AgencyMembership.user_id == user.id)
        )
        if membership is None:
            db.session.add(
                AgencyMembership(
                    agency_id=invitation.agency_id, user_id=user.id, role=invitation.agency_role
                )
            )
    else:
        membership = db.session.scalar(
            tenancy.scoped_select(BrandMembership).where(
                BrandMembership.user_id == user.id,
                BrandMembership.brand_id == invitation.brand_id,
            )
        )
        if membership is None:
            db.session.add(
                BrandMembership(
                    agency_id=invitation.agency_id,
                    brand_id=invitation.brand_id,
                    user_id=user.id,
                    role=invitation.brand_role,
                )
            )
        else:
            membership.role = invitation.brand_role
    invitation.accepted_at = utcnow()
    audit.record(
        "invitation.accepted",
        agency_id=invitation.agency_id,
        brand_id=invitation.brand_id,
        target_type="invitation",
        target_id=invitation.id,
        actor=actor.as_user(user.id),
    )
    db.session.flush()
    tokens = identity.start_session_for(user, invitation.agency_id)
    db.session.commit()
    return tokens
