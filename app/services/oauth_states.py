"""An OAuth authorization in flight: the single-use, expiring state that ties the network's
callback to the brand and the caller who started it.

`accounts.start_authorization` records one; `accounts.complete_authorization` claims it, once.
Only a digest of the state is stored, and the PKCE verifier is encrypted like credentials, since
whoever holds it (and the code) could finish the exchange. `maintenance` forgets old ones.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from app import tenancy
from app.auth.principal import Principal
from app.errors import Conflict, ValidationFailed
from app.extensions import db
from app.models import Brand, OAuthState, SocialAccount
from app.models.base import utcnow
from app.networks.base import AuthorizationRequest
from app.security import crypto


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def record(
    brand: Brand,
    principal: Principal,
    network: str,
    request: AuthorizationRequest,
    *,
    expires_at: datetime,
    account: SocialAccount | None,
) -> None:
    """Keep what the callback will need (the caller commits)."""
    verifier = request.code_verifier
    db.session.add(
        OAuthState(
            agency_id=brand.agency_id,
            brand_id=brand.id,
            state_digest=_digest(request.state),
            network=network,
            principal_kind=principal.kind,
            principal_id=principal.id,
            instance_url=request.instance_url,
            account_kind=request.account_kind,
            redirect_uri=request.redirect_uri,
            account_id=account.id if account else None,
            verifier_encrypted=crypto.encrypt({"code_verifier": verifier}) if verifier else None,
            expires_at=expires_at,
        )
    )


def claim(brand: Brand, principal: Principal, state: str) -> OAuthState:
    """The state row, marked used in its own committed transaction, or a clear 4xx."""
    row = db.session.scalars(
        tenancy.scoped_select(OAuthState).where(
            OAuthState.brand_id == brand.id, OAuthState.state_digest == _digest(state)
        )
    ).first()
    # Someone else's state, or another brand's, is as unknown as a made-up one.
    unknown = ValidationFailed(
        "No authorization in progress with this state for you on this brand: start again "
        "with POST …/accounts/connect.",
        errors={"state": ["Unknown state for this brand and caller."]},
    )
    if row is None or (row.principal_kind, row.principal_id) != (principal.kind, principal.id):
        raise unknown
    if row.used_at is not None:
        raise Conflict(
            "This authorization was already used; start again with POST …/accounts/connect.",
            errors={"state": ["Already used."]},
        )
    if row.expires_at <= utcnow():
        raise ValidationFailed(
            "This authorization expired; start again with POST …/accounts/connect.",
            errors={"state": ["Expired."]},
        )
    claimed = db.session.execute(
        tenancy.scoped_update(OAuthState)
        .where(OAuthState.id == row.id, OAuthState.used_at.is_(None))
        .values(used_at=utcnow())
    )
    db.session.commit()
    if claimed.rowcount != 1:  # a concurrent callback won the race
        raise Conflict("This authorization was already used.", errors={"state": ["Already used."]})
    return row


def authorization_request(row: OAuthState, state: str) -> AuthorizationRequest:
    """The request as it was started, for the code exchange."""
    verifier = None
    if row.verifier_encrypted is not None:
        verifier = crypto.decrypt(row.verifier_encrypted)["code_verifier"]
    return AuthorizationRequest(
        state=state,
        redirect_uri=row.redirect_uri,
        code_verifier=verifier,
        instance_url=row.instance_url,
        account_kind=row.account_kind,
    )
