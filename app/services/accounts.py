"""Social accounts: connecting (OAuth or direct credentials), reconnecting, disconnecting.
The transaction boundary for everything under /accounts.

Credentials are encrypted before they touch the session and decrypted only here, right before a
connector call; nothing in this module logs them or returns them. What differs between networks
is asked of the connector (the hooks in app/networks/base.py), never decided here by name.

Next to it: `oauth_states` (an authorization in flight), `instance_apps` (our app on each
Mastodon instance), `token_refresh` (the periodic sweep), `key_rotation` (re-encrypting at rest).
"""

from __future__ import annotations

import logging
import secrets as secrets_module
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Select

from app import tenancy
from app.auth.principal import Principal
from app.errors import BadGateway, Conflict, ValidationFailed
from app.extensions import db
from app.models import AccountHealth, Brand, SocialAccount
from app.models.base import utcnow
from app.networks import OAUTH_NETWORKS, connector_for
from app.networks.base import (
    AuthorizationRequest,
    ConnectedAccount,
    Connector,
    CredentialsRejected,
    NetworkError,
    TokenSet,
    TransientNetworkError,
)
from app.security import crypto
from app.services import audit, instance_apps, oauth_states

log = logging.getLogger(__name__)


def guarded_base_url(url: str, *, field: str) -> str:
    # Imported on first use: the outbound guard brings httpx, which start-up does not need.
    from app.security.outbound import guarded_base_url as guard

    return guard(url, field=field)


# `last_error` keeps a sentence a person can act on, not a whole answer from a network.
ERROR_TEXT_LIMIT = 500


@dataclass
class Authorization:
    network: str
    authorization_url: str
    expires_at: datetime


@dataclass
class ReconnectResult:
    account: SocialAccount | None = None
    authorization: Authorization | None = None


# -- errors from the networks, as problems ------------------------------------------------------


def _as_problem(exc: NetworkError, *, field: str, action: str) -> Exception:
    if isinstance(exc, TransientNetworkError):
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return BadGateway(
            f"{action}: the network is unavailable ({exc}); try again later.", headers=headers
        )
    if isinstance(exc, CredentialsRejected):
        return ValidationFailed(
            f"{action}: the network refused these credentials.",
            errors={field: ["The network refused these credentials."]},
        )
    return ValidationFailed(f"{action}: {exc}.", errors={field: [str(exc)]})


# -- reading ------------------------------------------------------------------------------------


def list_statement(
    brand_id: str, *, network: str | None = None, health: str | None = None
) -> Select[Any]:
    """The brand's accounts for the list, by network and health when given; paged by id."""
    stmt = tenancy.scoped_select(SocialAccount).where(SocialAccount.brand_id == brand_id)
    if network:
        stmt = stmt.where(SocialAccount.network == network)
    if health:
        stmt = stmt.where(SocialAccount.health == health)
    return stmt


def credentials_of(account: SocialAccount) -> dict[str, Any]:
    if account.credentials_encrypted is None:
        raise CredentialsRejected("the account has no credentials; reconnect it")
    return crypto.decrypt(account.credentials_encrypted)


# -- OAuth: start --------------------------------------------------------------------------------


def _instance_app(connector: Connector, instance_url: str, redirect_uri: str) -> dict[str, str]:
    try:
        return instance_apps.client_of(connector, instance_url, redirect_uri)
    except NetworkError as exc:
        raise _as_problem(
            exc, field="instance_url", action="Registering with the instance"
        ) from exc


def start_authorization(
    brand: Brand,
    principal: Principal,
    network: str,
    *,
    instance_url: str | None = None,
    account_kind: str | None = None,
    account: SocialAccount | None = None,
) -> Authorization:
    """Create a single-use, expiring state bound to this brand and caller; return the URL."""
    connector = connector_for(network)
    if not connector.uses_oauth:
        raise ValidationFailed(
            f"{network} accounts connect with credentials: POST to /accounts instead.",
            errors={"network": [f"Not an OAuth network; use one of {', '.join(OAUTH_NETWORKS)}."]},
        )
    missing = connector.missing_configuration()
    if missing:
        raise ValidationFailed(
            f"Connecting {network} accounts is not set up on this server ({missing} is empty).",
            errors={"network": [f"{network} is not configured on this server."]},
        )
    if connector.account_kinds:
        account_kind = account_kind or connector.account_kinds[0]
        if account_kind not in connector.account_kinds:
            raise ValidationFailed(
                f"{network} accounts are one of: {', '.join(connector.account_kinds)}.",
                errors={"account_kind": [f"Must be one of {', '.join(connector.account_kinds)}."]},
            )
    else:
        account_kind = None
    if connector.per_instance:
        if not instance_url:
            raise ValidationFailed(
                f"{connector.display_name} needs the instance's URL.",
                errors={"instance_url": [f"Required for {connector.display_name}."]},
            )
        instance_url = guarded_base_url(instance_url, field="instance_url")
    else:
        instance_url = None
    redirect_uri = current_app.config["OAUTH_REDIRECT_URI"]
    extra: dict[str, Any] = {}
    if connector.registers_app_per_instance:
        assert instance_url is not None
        extra = _instance_app(connector, instance_url, redirect_uri)
    state = secrets_module.token_urlsafe(32)
    verifier = secrets_module.token_urlsafe(64) if connector.supports_pkce else None
    expires_at = utcnow() + timedelta(seconds=current_app.config["OAUTH_STATE_TTL_SECONDS"])
    request = AuthorizationRequest(
        state=state,
        redirect_uri=redirect_uri,
        code_verifier=verifier,
        instance_url=instance_url,
        account_kind=account_kind,
        extra=extra,
    )
    url = connector.authorization_url(request)
    oauth_states.record(brand, principal, network, request, expires_at=expires_at, account=account)
    db.session.commit()
    return Authorization(network=network, authorization_url=url, expires_at=expires_at)


# -- OAuth: finish -------------------------------------------------------------------------------


def complete_authorization(
    brand: Brand,
    principal: Principal,
    *,
    state: str,
    code: str | None,
    error: str | None,
    actor: audit.Actor,
) -> list[SocialAccount]:
    row = oauth_states.claim(brand, principal, state)
    if error or not code:
        raise ValidationFailed(
            f"The network did not authorize the connection ({error or 'no code'}).",
            errors={"code": [f"No authorization code ({error or 'missing'})."]},
        )
    request = oauth_states.authorization_request(row, state)
    connector = connector_for(row.network)
    if connector.registers_app_per_instance:
        assert row.instance_url is not None
        request.extra.update(_instance_app(connector, row.instance_url, row.redirect_uri))
    try:
        connected = connector.exchange_code(request, code)
    except NetworkError as exc:
        raise _as_problem(exc, field="code", action="Exchanging the authorization code") from exc
    target = None
    if row.account_id:
        target = tenancy.get_in_brand_or_404(
            SocialAccount, brand.id, row.account_id, what="social account"
        )
        # A grant reaching several pages reconnects only the one asked for.
        same = [c for c in connected if c.identity.external_id == target.external_id]
        connected = same or connected[:1]
    saved = [
        _save(brand, principal, row.network, item, reconnecting=target, actor=actor)
        for item in connected
    ]
    db.session.commit()
    return saved


# -- direct credentials ----------------------------------------------------------------------------


def connect_direct(
    brand: Brand, principal: Principal, data: dict[str, Any], *, actor: audit.Actor
) -> SocialAccount:
    connected = _verify_direct(data["network"], data)
    account = _save(brand, principal, data["network"], connected, reconnecting=None, actor=actor)
    _apply_display(account, data)
    db.session.commit()
    return account


def _verify_direct(network: str, data: dict[str, Any]) -> ConnectedAccount:
    connector = connector_for(network)
    values = dict(data)
    if connector.per_instance:
        url_field = connector.instance_url_field
        given = data.get(url_field) or connector.default_instance_url() or ""
        values[url_field] = guarded_base_url(given, field=url_field)
    try:
        return connector.connect_direct(values)
    except NetworkError as exc:
        raise _as_problem(
            exc, field=connector.secret_field, action=f"Verifying the {network} credentials"
        ) from exc


# -- saving --------------------------------------------------------------------------------------


def _save(
    brand: Brand,
    principal: Principal,
    network: str,
    connected: ConnectedAccount,
    *,
    reconnecting: SocialAccount | None,
    actor: audit.Actor,
) -> SocialAccount:
    identity = connected.identity
    if reconnecting is not None:
        if reconnecting.external_id != identity.external_id:
            raise Conflict(
                f"You signed in as {identity.handle}, not {reconnecting.handle}: sign in as the "
                "account to reconnect, or connect the other one as a new account.",
                errors={"account": ["Another account than the one being reconnected."]},
            )
        account = reconnecting
    else:
        # Connecting an account the brand already has (even a disconnected one) reconnects that
        # row, so its history stays in one place.
        account = db.session.scalars(
            list_statement(brand.id, network=network).where(
                SocialAccount.external_id == identity.external_id
            )
        ).first()
    action = "social_account.reconnected" if account is not None else "social_account.connected"
    if account is None:
        account = SocialAccount(
            agency_id=brand.agency_id,
            brand_id=brand.id,
            network=network,
            external_id=identity.external_id,
            settings={},
            version=1,
        )
        db.session.add(account)
    else:
        account.version = (account.version or 1) + 1
        account.updated_at = utcnow()
    account.handle = identity.handle[:255]
    account.display_name = (identity.display_name or None) and identity.display_name[:255]
    account.account_kind = identity.account_kind
    account.instance_url = connected.instance_url
    if connected.limits:
        account.settings = {**(account.settings or {}), **connected.limits}
    store_tokens(account, connected.tokens)
    account.connected_by_user_id = principal.user_id
    account.disconnected_at = None
    db.session.flush()
    audit.record(
        action,
        actor=actor,
        agency_id=brand.agency_id,
        brand_id=brand.id,
        target_type="social_account",
        target_id=account.id,
        data={"network": network, "handle": account.handle},
    )
    return account


def store_tokens(account: SocialAccount, tokens: TokenSet) -> None:
    """Encrypt fresh credentials onto the account, which is healthy again (the caller commits)."""
    account.credentials_encrypted = crypto.encrypt(tokens.secrets)
    account.token_expires_at = tokens.expires_at
    if tokens.scopes is not None:
        account.scopes = tokens.scopes
    account.health = AccountHealth.ACTIVE.value
    account.last_error = None


def _apply_display(account: SocialAccount, data: dict[str, Any]) -> None:
    settings = dict(account.settings or {})
    for key in ("label", "color"):
        if key in data:
            settings[key] = data[key]
    account.settings = settings


# -- reconnect, update, disconnect ---------------------------------------------------------------


def reconnect(
    brand: Brand,
    principal: Principal,
    account: SocialAccount,
    data: dict[str, Any],
    *,
    actor: audit.Actor,
) -> ReconnectResult:
    network = account.network
    connector = connector_for(network)
    if connector.reconnects_with_credentials(data):
        secret = connector.secret_field
        if not data.get(secret):
            raise ValidationFailed(
                f"Reconnecting a {connector.display_name} account needs a new "
                f"{secret.replace('_', ' ')}.",
                errors={secret: [f"Required for {connector.display_name}."]},
            )
        values = {**data, "handle": data.get("handle") or account.handle}
        if connector.per_instance:
            values[connector.instance_url_field] = account.instance_url
        connected = _verify_direct(network, values)
        saved = _save(brand, principal, network, connected, reconnecting=account, actor=actor)
        db.session.commit()
        return ReconnectResult(account=saved)
    # The account's kind (LinkedIn member or organization) is kept where the network has kinds.
    authorization = start_authorization(
        brand,
        principal,
        network,
        instance_url=account.instance_url,
        account_kind=account.account_kind,
        account=account,
    )
    return ReconnectResult(authorization=authorization)


def update_display(
    account: SocialAccount, changes: dict[str, Any], *, actor: audit.Actor
) -> SocialAccount:
    _apply_display(account, changes)
    account.version = (account.version or 1) + 1
    account.updated_at = utcnow()
    audit.record(
        "social_account.updated",
        actor=actor,
        agency_id=account.agency_id,
        brand_id=account.brand_id,
        target_type="social_account",
        target_id=account.id,
        data=dict(changes),
    )
    db.session.commit()
    return account


def disconnect(account: SocialAccount, *, actor: audit.Actor) -> None:
    """Revoke at the network (best effort), forget the credentials, keep the row and history."""
    if account.health == AccountHealth.REVOKED.value and account.credentials_encrypted is None:
        return
    if account.credentials_encrypted is not None:
        try:
            connector_for(account.network).revoke(credentials_of(account), account.instance_url)
        except (NetworkError, crypto.CredentialsUnreadable) as exc:
            # The person asked to disconnect: do it here even if the network did not listen.
            account.last_error = f"revocation at the network failed: {exc}"[:ERROR_TEXT_LIMIT]
            log.warning(
                "revoking account %s at %s failed: %s",
                account.id,
                account.network,
                type(exc).__name__,
            )
    account.credentials_encrypted = None
    account.token_expires_at = None
    account.health = AccountHealth.REVOKED.value
    account.disconnected_at = utcnow()
    account.version = (account.version or 1) + 1
    account.updated_at = utcnow()
    audit.record(
        "social_account.disconnected",
        actor=actor,
        agency_id=account.agency_id,
        brand_id=account.brand_id,
        target_type="social_account",
        target_id=account.id,
        data={"network": account.network},
    )
    db.session.commit()
