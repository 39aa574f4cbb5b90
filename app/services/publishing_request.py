"""What a publishing attempt sends, and the sending: the network request built from the post
(`build_request`: its text and media, or an account's variant of them), the credentials the
connector acts with (`network_account`, `refreshed_credentials`), and the call itself (`send`:
look for an earlier try's post where one may exist, else publish).
"""

from __future__ import annotations

from datetime import datetime

from app import tenancy
from app.extensions import db
from app.models import Delivery, DeliveryErrorKind, Media, Post, SocialAccount
from app.models.base import utcnow
from app.networks.base import (
    Connector,
    CredentialsRejected,
    MediaItem,
    NetworkAccount,
    NotSupported,
    Published,
    PublishRequest,
    TokenExpired,
    TransientNetworkError,
)
from app.security import crypto
from app.services import token_refresh
from app.services.accounts import credentials_of
from app.storage import get_storage


class CannotSend(Exception):
    """Something on our side keeps this attempt from reaching the network."""

    def __init__(self, message: str, kind: DeliveryErrorKind, *, permanent: bool) -> None:
        super().__init__(message)
        self.kind = kind
        self.permanent = permanent


class Unverifiable(Exception):
    """The network cannot tell whether an earlier try made the post, and its idempotency key
    no longer protects a second one: a person must look."""


def send(
    connector: Connector,
    account: SocialAccount,
    credentials: NetworkAccount,
    request: PublishRequest,
    delivery: Delivery,
    action: str,
) -> tuple[bool, Published]:
    """(found, the post): look for an earlier try's post where one may exist, else publish.
    An expired token is refreshed once, and the call made again."""
    try:
        return _look_then_publish(connector, credentials, request, delivery, action)
    except TokenExpired:
        credentials = refreshed_credentials(account, credentials.token_expires_at)
        return _look_then_publish(connector, credentials, request, delivery, action)


def _look_then_publish(
    connector: Connector,
    account: NetworkAccount,
    request: PublishRequest,
    delivery: Delivery,
    action: str,
) -> tuple[bool, Published]:
    first = delivery.first_attempt_at or utcnow()
    window = connector.idempotency_window
    key_holds = window is not None and utcnow() - first < window
    # An earlier try may have made the post: after an unknown outcome (the reconciler), or a
    # transient failure on a network that dedupes by our key once the key has expired.
    must_look = action == "reconcile" or (
        delivery.attempts > 1 and window is not None and not key_holds
    )
    if must_look:
        try:
            existing = connector.find_existing(account, request, since=first)
        except NotSupported as exc:
            if not key_holds:
                raise Unverifiable(str(exc)) from exc
            existing = None  # the network's own key makes a second send harmless
        if existing is not None:
            return True, existing
    return False, connector.publish(account, request)


def refreshed_credentials(account: SocialAccount, expired_at: datetime | None) -> NetworkAccount:
    """The account's tokens refreshed and stored (once, whichever job gets there first: the
    row is locked, and a token newer than `expired_at`, the one that failed, is used as it
    is), or the error that says why not."""
    db.write_lock_on_sqlite()
    locked = db.session.scalars(
        tenancy.scoped_select(SocialAccount)
        .where(SocialAccount.id == account.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if locked.token_expires_at is not None and locked.token_expires_at != expired_at:
        outcome = "refreshed"  # another job refreshed it meanwhile
    else:
        outcome = token_refresh.refresh_account(locked)
    db.session.commit()
    if outcome == "refreshed":
        return network_account(locked)
    if outcome == "needs_reconnect":
        raise CredentialsRejected(locked.last_error or "the network refused the credentials")
    raise TransientNetworkError(
        f"the access token expired and could not be refreshed ({outcome}): "
        f"{locked.last_error or 'no reason given'}"
    )


def network_account(account: SocialAccount) -> NetworkAccount:
    """What a connector acts as: the account's identity and decrypted credentials."""
    try:
        secrets = credentials_of(account)
    except crypto.CredentialsUnreadable as exc:
        raise CannotSend(
            "This server cannot decrypt the account's credentials (a configuration problem "
            "on the server, not the account's): check CREDENTIALS_ENCRYPTION_KEYS.",
            DeliveryErrorKind.INTERNAL,
            permanent=False,
        ) from exc
    return NetworkAccount(
        external_id=account.external_id,
        secrets=secrets,
        instance_url=account.instance_url,
        account_kind=account.account_kind,
        token_expires_at=account.token_expires_at,
    )


def build_request(delivery: Delivery, account: SocialAccount) -> PublishRequest:
    post = db.session.scalars(tenancy.scoped_select(Post).where(Post.id == delivery.post_id)).one()
    variant = next((v for v in post.variants if v.account_id == delivery.account_id), None)
    text = variant.text if variant is not None and variant.text is not None else post.text
    media_ids = variant.media_ids if variant is not None and variant.media_ids is not None else None
    if media_ids is None:
        media_ids = post.media_ids
    return PublishRequest(
        idempotency_key=delivery.id,
        text=text,
        link=post.link,
        media=_media_items(media_ids, delivery.brand_id),
        # The first attempt's instant, not the schedule (which a person may move between two
        # attempts): it dates Bluesky's record key, which must never change.
        scheduled_for=delivery.first_attempt_at,
    )


def _media_items(media_ids: list[str], brand_id: str) -> tuple[MediaItem, ...]:
    if not media_ids:
        return ()
    from app.services.media import signed_url

    rows = {
        m.id: m
        for m in db.session.scalars(
            tenancy.scoped_select(Media).where(
                Media.brand_id == brand_id, Media.id.in_(media_ids), Media.deleted_at.is_(None)
            )
        )
    }
    missing = [m for m in media_ids if m not in rows]
    if missing:
        raise CannotSend(
            f"Media {', '.join(missing)} of this post was deleted before the post went out.",
            DeliveryErrorKind.REJECTED,
            permanent=True,
        )
    storage = get_storage()
    items = []
    for media_id in media_ids:
        media = rows[media_id]
        if not storage.exists(media.storage_key):
            raise CannotSend(
                f"The file of media {media.id} is missing from storage.",
                DeliveryErrorKind.INTERNAL,
                permanent=True,
            )
        items.append(
            MediaItem(
                content_type=media.content_type,
                size_bytes=media.size_bytes,
                open=lambda key=media.storage_key: storage.open(key),
                filename=media.filename,
                width=media.width,
                height=media.height,
                duration_seconds=media.duration_seconds,
                alt_text=media.alt_text,
                url=signed_url(media),
            )
        )
    return tuple(items)
