"""An account whose credentials died: marked `needs_reconnect` once, and the agency told.

Both ways an account learns it (the token-refresh sweep, app/services/token_refresh.py, and a
publish the network refused with a 401, app/services/publishing_outcomes.py) come here. The
move is a compare-and-set on the account's health, so that a burst of deliveries failing on one
account at once records one event and sends one message, not one per delivery.
"""

from __future__ import annotations

from sqlalchemy import select

from app import tenancy
from app.extensions import db
from app.models import AccountHealth, AgencyMembership, AgencyRole, Brand, SocialAccount, User
from app.networks import connector_for
from app.services import audit, outbox, webhooks

ERROR_TEXT_LIMIT = 500
# Who hears of it: the people who can reconnect any account of the agency.
_TOLD = (AgencyRole.OWNER.value, AgencyRole.ADMIN.value)


def mark_needs_reconnect(account: SocialAccount, reason: str) -> bool:
    """Set the account to `needs_reconnect` with `reason`, record
    `social_account.needs_reconnect`, tell the agency's webhook endpoints
    (`account.needs_reconnect`) and mail the agency's owners and admins, in the caller's
    transaction (the caller commits). False, and nothing recorded, when it already needed
    reconnecting."""
    reason = reason[:ERROR_TEXT_LIMIT]
    moved = db.session.execute(
        tenancy.scoped_update(SocialAccount)
        .where(
            SocialAccount.id == account.id,
            SocialAccount.health != AccountHealth.NEEDS_RECONNECT.value,
        )
        .values(health=AccountHealth.NEEDS_RECONNECT.value, last_error=reason)
        .execution_options(synchronize_session=False)
    ).rowcount
    account.health = AccountHealth.NEEDS_RECONNECT.value
    account.last_error = reason
    if not moved:
        return False
    audit.record(
        "social_account.needs_reconnect",
        agency_id=account.agency_id,
        brand_id=account.brand_id,
        target_type="social_account",
        target_id=account.id,
        data={"reason": reason, "network": account.network, "handle": account.handle},
        actor=audit.SYSTEM,
    )
    webhooks.emit_for_account("account.needs_reconnect", account)
    _tell_the_agency(account, reason)
    return True


def _tell_the_agency(account: SocialAccount, reason: str) -> None:
    brand = db.session.scalars(
        tenancy.scoped_select(Brand).where(Brand.id == account.brand_id)
    ).first()
    user_ids = db.session.scalars(
        tenancy.scoped_select(AgencyMembership, AgencyMembership.user_id).where(
            AgencyMembership.agency_id == account.agency_id,
            AgencyMembership.role.in_(_TOLD),
        )
    ).all()
    if not user_ids:
        return
    people = db.session.scalars(select(User).where(User.id.in_(user_ids)).order_by(User.id))
    for person in people:
        outbox.send(
            "account_needs_reconnect",
            to=person.email,
            context={
                "name": person.name,
                "network": connector_for(account.network).display_name or account.network,
                "handle": account.handle,
                "brand_name": brand.name if brand is not None else "",
                "reason": reason,
            },
        )
