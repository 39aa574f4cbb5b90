"""Social accounts: connecting (OAuth or direct credentials), reconnecting, disconnecting,
keeping tokens fresh. The transaction boundary for everything under /accounts.

Credentials are encrypted before they touch the session and decrypted only here, right before a
connector call; nothing in this module logs them or returns them.
"""

from __future__ import annotations

import hashlib
import logging
import secrets as secrets_module
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, or_, select, update
from sqlalchemy import exc as sa_exc

from app import tenancy
from app.auth.principal import Principal
from app.errors import BadGateway, Conflict, ValidationFailed
from app.extensions import db
from app.models import (
    AccountHealth,
    AuditEvent,
    Brand,
    MastodonApp,
    OAuthState,
    OutboundEmail,
    SocialAccount,
    WebhookEndpoint,
)
from app.models.base import utcnow
from app.networks import OAUTH_NETWORKS, connector_for
from app.networks.base import (
    AuthorizationRequest,
    ConnectedAccount,
    CredentialsRejected,
    NetworkError,
    NotSupported,
    TransientNetworkError,
)
from app.security import crypto
from app.services import audit, webhooks

log = logging.getLogger(__name__)


def guarded_base_url(url: str, *, field: str) -> str:
    # Imported on first use: the outbound guard brings httpx, which start-up does not need.
    from app.security.outbound import guarded_base_url as guard

    return guard(url, field=field)


_ERROR_TEXT_LIMIT = 500


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


def accounts_select(brand_id: str, *, network: str | None = None, health: str | None = None):
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


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _mastodon_app(instance_url: str, redirect_uri: str) -> tuple[str, str]:
    """Our client on this instance: registered once (POST /api/v1/apps), then reused."""
    scopes = current_app.config["MASTODON_SCOPES"]
    stmt = select(MastodonApp).where(
        MastodonApp.instance_url == instance_url,
        MastodonApp.redirect_uri == redirect_uri,
        MastodonApp.scopes == scopes,
    )
    cached = db.session.scalars(stmt).first()
    if cached is None:
        from app.networks.mastodon import MastodonConnector  # loaded by connector_for anyway

        connector = connector_for("mastodon")
        assert isinstance(connector, MastodonConnector)
        try:
            client_id, client_secret = connector.register_app(instance_url, redirect_uri, scopes)
        except NetworkError as exc:
            raise _as_problem(
                exc, field="instance_url", action="Registering with the instance"
            ) from exc
        cached = MastodonApp(
            instance_url=instance_url,
            redirect_uri=redirect_uri,
            scopes=scopes,
            client_id=client_id,
            client_secret_encrypted=crypto.encrypt({"client_secret": client_secret}),
        )
        db.session.add(cached)
        try:
            db.session.commit()
        except sa_exc.IntegrityError:
            # Another request registered at the same time: use theirs.
            db.session.rollback()
            cached = db.session.scalars(stmt).one()
    secret = crypto.decrypt(cached.client_secret_encrypted)["client_secret"]
    return cached.client_id, secret


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
    if network == "mastodon":
        if not instance_url:
            raise ValidationFailed(
                "Mastodon needs the instance's URL.",
                errors={"instance_url": ["Required for Mastodon."]},
            )
        instance_url = guarded_base_url(instance_url, field="instance_url")
    else:
        instance_url = None
    redirect_uri = current_app.config["OAUTH_REDIRECT_URI"]
    extra: dict[str, Any] = {}
    if network == "mastodon":
        assert instance_url is not None
        extra["client_id"], extra["client_secret"] = _mastodon_app(instance_url, redirect_uri)
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
    db.session.add(
        OAuthState(
            agency_id=brand.agency_id,
            brand_id=brand.id,
            state_digest=_digest(state),
            network=network,
            principal_kind=principal.kind,
            principal_id=principal.id,
            instance_url=instance_url,
            account_kind=account_kind,
            redirect_uri=redirect_uri,
            account_id=account.id if account else None,
            verifier_encrypted=crypto.encrypt({"code_verifier": verifier}) if verifier else None,
            expires_at=expires_at,
        )
    )
    db.session.commit()
    return Authorization(network=network, authorization_url=url, expires_at=expires_at)


# -- OAuth: finish -------------------------------------------------------------------------------


def _claim_state(brand: Brand, principal: Principal, state: str) -> OAuthState:
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
        update(OAuthState)
        .where(OAuthState.id == row.id, OAuthState.used_at.is_(None))
        .values(used_at=utcnow())
    )
    db.session.commit()
    if claimed.rowcount != 1:  # a concurrent callback won the race
        raise Conflict("This authorization was already used.", errors={"state": ["Already used."]})
    return row


def complete_authorization(
    brand: Brand, principal: Principal, *, state: str, code: str | None, error: str | None
) -> list[SocialAccount]:
    row = _claim_state(brand, principal, state)
    if error or not code:
        raise ValidationFailed(
            f"The network did not authorize the connection ({error or 'no code'}).",
            errors={"code": [f"No authorization code ({error or 'missing'})."]},
        )
    verifier = None
    if row.verifier_encrypted is not None:
        verifier = crypto.decrypt(row.verifier_encrypted)["code_verifier"]
    request = AuthorizationRequest(
        state=state,
        redirect_uri=row.redirect_uri,
        code_verifier=verifier,
        instance_url=row.instance_url,
        account_kind=row.account_kind,
    )
    if row.network == "mastodon":
        assert row.instance_url is not None
        request.extra["client_id"], request.extra["client_secret"] = _mastodon_app(
            row.instance_url, row.redirect_uri
        )
    try:
        connected = connector_for(row.network).exchange_code(request, code)
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
    saved = [_save(brand, principal, row.network, item, reconnecting=target) for item in connected]
    db.session.commit()
    return saved


# -- direct credentials ----------------------------------------------------------------------------


def connect_direct(brand: Brand, principal: Principal, data: dict[str, Any]) -> SocialAccount:
    connected = _verify_direct(data["network"], data)
    account = _save(brand, principal, data["network"], connected, reconnecting=None)
    _apply_display(account, data)
    db.session.commit()
    return account


def _verify_direct(network: str, data: dict[str, Any]) -> ConnectedAccount:
    values = dict(data)
    if network == "bluesky":
        field = "app_password"
        values["pds_url"] = guarded_base_url(
            data.get("pds_url") or current_app.config["BLUESKY_DEFAULT_PDS_URL"], field="pds_url"
        )
        values["handle"] = data["handle"].lstrip("@")
    else:
        field = "access_token"
        values["instance_url"] = guarded_base_url(data["instance_url"], field="instance_url")
    try:
        return connector_for(network).connect_direct(values)
    except NetworkError as exc:
        raise _as_problem(exc, field=field, action=f"Verifying the {network} credentials") from exc


# -- saving --------------------------------------------------------------------------------------


def _save(
    brand: Brand,
    principal: Principal,
    network: str,
    connected: ConnectedAccount,
    *,
    reconnecting: SocialAccount | None,
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
            accounts_select(brand.id, network=network).where(
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
    _store_tokens(account, connected.tokens)
    account.connected_by_user_id = principal.user_id
    account.disconnected_at = None
    db.session.flush()
    audit.record(
        action,
        agency_id=brand.agency_id,
        brand_id=brand.id,
        target_type="social_account",
        target_id=account.id,
        data={"network": network, "handle": account.handle},
    )
    return account


def _store_tokens(account: SocialAccount, tokens: Any) -> None:
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
    brand: Brand, principal: Principal, account: SocialAccount, data: dict[str, Any]
) -> ReconnectResult:
    network = account.network
    if network == "bluesky" or (network == "mastodon" and data.get("access_token")):
        if network == "bluesky" and not data.get("app_password"):
            raise ValidationFailed(
                "Reconnecting a Bluesky account needs a new app password.",
                errors={"app_password": ["Required for Bluesky."]},
            )
        values = {
            "handle": data.get("handle") or account.handle,
            "app_password": data.get("app_password"),
            "access_token": data.get("access_token"),
            "pds_url": account.instance_url,
            "instance_url": account.instance_url,
        }
        connected = _verify_direct(network, values)
        saved = _save(brand, principal, network, connected, reconnecting=account)
        db.session.commit()
        return ReconnectResult(account=saved)
    authorization = start_authorization(
        brand,
        principal,
        network,
        instance_url=account.instance_url,
        account_kind=account.account_kind if network == "linkedin" else None,
        account=account,
    )
    return ReconnectResult(authorization=authorization)


def update_display(account: SocialAccount, changes: dict[str, Any]) -> SocialAccount:
    _apply_display(account, changes)
    account.version = (account.version or 1) + 1
    account.updated_at = utcnow()
    audit.record(
        "social_account.updated",
        agency_id=account.agency_id,
        brand_id=account.brand_id,
        target_type="social_account",
        target_id=account.id,
        data=dict(changes),
    )
    db.session.commit()
    return account


def disconnect(account: SocialAccount) -> None:
    """Revoke at the network (best effort), forget the credentials, keep the row and history."""
    if account.health == AccountHealth.REVOKED.value and account.credentials_encrypted is None:
        return
    if account.credentials_encrypted is not None:
        try:
            connector_for(account.network).revoke(credentials_of(account), account.instance_url)
        except (NetworkError, crypto.CredentialsUnreadable) as exc:
            # The person asked to disconnect: do it here even if the network did not listen.
            account.last_error = f"revocation at the network failed: {exc}"[:_ERROR_TEXT_LIMIT]
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
        agency_id=account.agency_id,
        brand_id=account.brand_id,
        target_type="social_account",
        target_id=account.id,
        data={"network": account.network},
    )
    db.session.commit()


# -- keeping tokens fresh ------------------------------------------------------------------------


def refresh_account(account: SocialAccount, *, now: datetime | None = None) -> str:
    """Refresh one account's token; returns the outcome. The caller commits.

    A transient failure (timeout, 429, 5xx) keeps the account's health as it is and records the
    error: the next run tries again. Only a network saying the credentials are dead (401,
    invalid_grant) marks it `needs_reconnect`. Credentials this process cannot decrypt say
    nothing about the account: the account is left untouched (`unreadable`, see below).
    """
    now = now or utcnow()
    connector = connector_for(account.network)
    try:
        secrets = credentials_of(account)
    except CredentialsRejected as exc:
        return _mark_dead(account, str(exc))
    except crypto.CredentialsUnreadable:
        # The operator's error, not the account's: this process lacks the key the row was
        # encrypted with (a worker started without CREDENTIALS_ENCRYPTION_KEYS, or a key dropped
        # before `relais accounts rotate-keys`). Marking it dead would make every agency
        # reconnect everything for nothing.
        _report_unreadable(account, now)
        return "unreadable"
    if not connector.can_refresh(secrets):
        if account.token_expires_at is not None and account.token_expires_at <= now:
            return _mark_dead(account, "the token expired and this network cannot refresh it")
        account.health = AccountHealth.EXPIRING.value
        return "expiring"
    try:
        tokens = connector.refresh(secrets, account.instance_url)
    except TransientNetworkError as exc:
        account.last_error = f"refresh failed, will retry: {exc}"[:_ERROR_TEXT_LIMIT]
        return "transient_failure"
    except CredentialsRejected as exc:
        return _mark_dead(account, str(exc))
    except NotSupported:
        account.health = AccountHealth.EXPIRING.value
        return "expiring"
    except NetworkError as exc:
        # Refused for a reason we cannot read as "dead": keep the account, say why.
        account.last_error = f"refresh failed: {exc}"[:_ERROR_TEXT_LIMIT]
        return "failed"
    _store_tokens(account, tokens)
    account.last_refreshed_at = now
    return "refreshed"


def _report_unreadable(account: SocialAccount, now: datetime) -> None:
    """Loudly, without touching the account: an error log every run, and an audit event at
    most once a day per account (the job runs every 15 minutes until someone fixes the keys)."""
    log.error(
        "social account %s (agency %s): no configured key decrypts its credentials; left as it "
        "is. Check CREDENTIALS_ENCRYPTION_KEYS on this process.",
        account.id,
        account.agency_id,
    )
    recently = db.session.scalar(
        tenancy.scoped_select(AuditEvent, AuditEvent.id)
        .where(
            AuditEvent.action == "social_account.credentials_unreadable",
            AuditEvent.target_id == account.id,
            AuditEvent.created_at > now - timedelta(days=1),
        )
        .limit(1)
    )
    if recently is None:
        audit.record(
            "social_account.credentials_unreadable",
            agency_id=account.agency_id,
            brand_id=account.brand_id,
            target_type="social_account",
            target_id=account.id,
            data={
                "reason": "the server could not decrypt the stored credentials (a server "
                "configuration problem, not the account's); the account was left as it is"
            },
            actor_type="system",
        )


def _mark_dead(account: SocialAccount, reason: str) -> str:
    account.health = AccountHealth.NEEDS_RECONNECT.value
    account.last_error = reason[:_ERROR_TEXT_LIMIT]
    audit.record(
        "social_account.needs_reconnect",
        agency_id=account.agency_id,
        brand_id=account.brand_id,
        target_type="social_account",
        target_id=account.id,
        data={"reason": account.last_error},
        actor_type="system",
    )
    webhooks.emit_for_account("account.needs_reconnect", account)
    return "needs_reconnect"


class UnreadableCredentials(RuntimeError):
    """A run met credentials no configured key decrypts: a configuration error, raised after the
    run so the job fails loudly (the readable accounts' work is committed first)."""

    def __init__(self, account_ids: list[str], outcomes: dict[str, int]) -> None:
        self.account_ids = account_ids
        self.outcomes = outcomes
        shown = ", ".join(account_ids[:10]) + (" …" if len(account_ids) > 10 else "")
        super().__init__(
            f"{len(account_ids)} social account(s) have credentials that no key in "
            f"CREDENTIALS_ENCRYPTION_KEYS decrypts ({shown}); they were left as they are. Give "
            f"this process the keys the API uses. Outcomes: {outcomes}"
        )


def refresh_expiring_tokens(*, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """Every account whose token expires within TOKEN_REFRESH_MARGIN_SECONDS, across agencies.

    Raises UnreadableCredentials at the end when any account's credentials could not be read.
    """
    now = now or utcnow()
    horizon = now + timedelta(seconds=current_app.config["TOKEN_REFRESH_MARGIN_SECONDS"])
    with tenancy.system_scope():
        due = db.session.execute(
            select(SocialAccount.id, SocialAccount.agency_id)
            .where(
                SocialAccount.health.in_(
                    [AccountHealth.ACTIVE.value, AccountHealth.EXPIRING.value]
                ),
                SocialAccount.credentials_encrypted.is_not(None),
                SocialAccount.token_expires_at.is_not(None),
                SocialAccount.token_expires_at <= horizon,
            )
            .order_by(SocialAccount.token_expires_at)
            .limit(batch)
        ).all()
        db.session.commit()
    outcomes: Counter[str] = Counter()
    unreadable: list[str] = []
    for account_id, agency_id in due:
        tenancy.enter_agency(agency_id)
        try:
            # Skip a row another run holds: refreshing twice would burn a rotating token.
            account = db.session.scalars(
                tenancy.scoped_select(SocialAccount)
                .where(SocialAccount.id == account_id)
                .with_for_update(skip_locked=True)
            ).first()
            if account is None:
                db.session.rollback()
                outcomes["skipped"] += 1
                continue
            outcome = refresh_account(account, now=now)
            outcomes[outcome] += 1
            if outcome == "unreadable":
                unreadable.append(account_id)
            db.session.commit()
        finally:
            tenancy.set_scope(tenancy.NO_SCOPE)
    if unreadable:
        raise UnreadableCredentials(unreadable, dict(outcomes))
    return dict(outcomes)


def purge_expired_states(*, now: datetime | None = None) -> int:
    """Forget authorizations that can no longer be finished (expired or used a day ago)."""
    cutoff = (now or utcnow()) - timedelta(days=1)
    with tenancy.system_scope():
        result = db.session.execute(
            delete(OAuthState).where(
                or_(OAuthState.expires_at <= cutoff, OAuthState.used_at <= cutoff)
            )
        )
        db.session.commit()
    return result.rowcount or 0


# -- key rotation --------------------------------------------------------------------------------


@dataclass
class Rotation:
    """What `relais accounts rotate-keys` did: counts per table, and the rows it could not read."""

    counts: dict[str, int]
    unreadable: list[tuple[str, str]]  # (table, row id)


def rotate_encryption_keys(batch: int = 200) -> Rotation:
    """Re-encrypt every stored secret with the newest key (run after adding a key in front).

    A row no configured key decrypts is reported and skipped, never fatal: the run re-encrypts
    every row it can, so dropping one wrong key later costs only the rows it names.
    """
    cipher = crypto.cipher()
    counts: Counter[str] = Counter()
    unreadable: list[tuple[str, str]] = []
    targets = (
        (SocialAccount, SocialAccount.credentials_encrypted, "social_accounts"),
        (OAuthState, OAuthState.verifier_encrypted, "oauth_states"),
        (MastodonApp, MastodonApp.client_secret_encrypted, "mastodon_apps"),
        # Messages not sent yet (the context of a sent one is erased).
        (OutboundEmail, OutboundEmail.context_encrypted, "outbound_emails"),
        # Webhook signing secrets (encrypted, not hashed: they sign every message).
        (WebhookEndpoint, WebhookEndpoint.secrets_encrypted, "webhook_endpoints"),
    )
    for model, column, name in targets:
        last_id: Any = None
        while True:
            with tenancy.system_scope():
                stmt = select(model).where(column.is_not(None)).order_by(model.id).limit(batch)
                if last_id is not None:
                    stmt = stmt.where(model.id > last_id)
                rows = list(db.session.scalars(stmt))
                for row in rows:
                    token = getattr(row, column.key)
                    if cipher.is_current(token):
                        counts[f"{name}_current"] += 1
                        continue
                    try:
                        setattr(row, column.key, cipher.rotate(token))
                    except crypto.CredentialsUnreadable:
                        log.error("%s %s: no configured key decrypts it; left as is", name, row.id)
                        unreadable.append((name, str(row.id)))
                        continue
                    counts[name] += 1
                db.session.commit()
            if len(rows) < batch:
                break
            last_id = rows[-1].id
    return Rotation(dict(counts), unreadable)
