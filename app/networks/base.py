"""The one interface every network connector implements.

A connector knows one network's endpoints and nothing about our database: it takes and returns
plain values (credentials as a dict that the service encrypts), and signals failures with the
errors below, which the services turn into account health and API problems:

- `TransientNetworkError`: timeout, connection failure, 429 or 5xx. Try again later; the
  credentials may well be fine, so never mark an account disconnected for one.
- `CredentialsRejected`: the network said the credentials are dead (401, `invalid_grant`, wrong
  password). The account needs a person to reconnect it.
- `NetworkError`: anything else the network refused (a 4xx we did not expect).

Publishing (`publish`, `find_existing`, `delete`) needs two more distinctions, because a post
must go out exactly once:

- `OutcomeUnknown`: the request that creates the post was sent and no usable answer came back
  (a timeout or a dropped connection after sending, a 5xx from a network that has no
  idempotency key). The post may exist. Never send it again blindly: ask `find_existing`.
- `ContentRejected`: the network refused this post (too long, duplicate, bad media) and said
  why; `str(error)` is the network's own message, for the person who wrote the post.

A `TransientNetworkError` raised by `publish` means trying again later is safe: the network
did not create the post (the connection never opened, a 429 or 503, a media upload that failed
before the post was made), or the network deduplicates by our idempotency key (a 5xx from
Mastodon or Bluesky: the retry returns the post if there is one; Mastodon forgets keys after
`idempotency_window`, so a retry later than that must reconcile first). `TokenExpired` asks for
a refresh of the credentials before trying again; it never means the account is lost.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, ClassVar


class NetworkError(Exception):
    """The network refused the request for a reason that retrying will not fix."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientNetworkError(NetworkError):
    """Timeout, connection failure, 429 or 5xx: worth trying again later."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class CredentialsRejected(NetworkError):
    """The credentials are dead (revoked, expired, wrong password): a person must reconnect."""


class NotSupported(NetworkError):
    """The network has no such operation (e.g. Mastodon tokens have no refresh)."""


class OutcomeUnknown(NetworkError):
    """The request creating the post was sent, and whether the network carried it out is not
    known (no answer, an unreadable one, or a 5xx where the network offers no idempotency).
    Reconcile with `Connector.find_existing` before publishing again; `retry_after` is how long
    the network asked us to wait, if it said."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ContentRejected(NetworkError):
    """The network refused the post itself; the message is the network's own words (e.g.
    Mastodon's "Validation failed: Text character limit of 500 exceeded"). Retrying the same
    content fails the same way: a person must change the post."""


class TokenExpired(NetworkError):
    """The access token ran out while the refresh token may still work: refresh the account's
    credentials (`Connector.refresh`) and try again. The request was not carried out."""


@dataclass
class Identity:
    """Who the credentials belong to, on the network."""

    external_id: str
    handle: str
    display_name: str | None = None
    account_kind: str | None = None


@dataclass
class TokenSet:
    """Credentials as the network handed them out. `secrets` is encrypted before storage."""

    secrets: dict[str, Any]
    expires_at: datetime | None = None
    scopes: list[str] | None = None


@dataclass
class ConnectedAccount:
    identity: Identity
    tokens: TokenSet
    instance_url: str | None = None
    # What the network says about its own limits (e.g. a Mastodon instance's max_characters),
    # kept in the account's settings for the content rules.
    limits: dict[str, Any] = field(default_factory=dict)


@dataclass
class AuthorizationRequest:
    """What the OAuth step needs from the caller and what we keep server-side meanwhile."""

    state: str
    redirect_uri: str
    code_verifier: str | None = None
    instance_url: str | None = None
    account_kind: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# -- publishing: plain values in, plain values out --------------------------------------------


@dataclass(frozen=True)
class NetworkAccount:
    """The connected account a connector acts as: who it is on the network (`external_id`, as
    `Identity` gave it, and its kind for LinkedIn), where (`instance_url`: the Mastodon instance
    or the Bluesky PDS) and with what (the decrypted `secrets`)."""

    external_id: str
    secrets: dict[str, Any]
    instance_url: str | None = None
    account_kind: str | None = None
    # When the access token runs out, if the network said (`TokenSet.expires_at`): a
    # connector raises TokenExpired instead of sending a request bound to fail.
    token_expires_at: datetime | None = None


@dataclass(frozen=True)
class MediaItem:
    """One picture or video to attach. `open()` returns a fresh binary stream of the file each
    time it is called (a retried upload reads it again); the connector closes it. `url` is a
    public link to the same file, for networks that fetch media themselves (Instagram) instead
    of receiving the bytes."""

    content_type: str
    size_bytes: int
    open: Callable[[], BinaryIO]
    filename: str = "media"
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    alt_text: str | None = None
    url: str | None = None

    @property
    def is_video(self) -> bool:
        return self.content_type.startswith("video/")


@dataclass(frozen=True)
class PublishRequest:
    """One post for one account.

    `idempotency_key` must be the same on every attempt of one delivery and differ between
    deliveries (the delivery id does): networks that have such a key get it (Mastodon's
    `Idempotency-Key`; Bluesky's record key is derived from it), so a retried request cannot
    make a second post. `scheduled_for`, when given, must be stable across attempts too: it
    dates Bluesky's record key.

    The options are read by the networks that have them and ignored by the others:
    `content_warning`, `visibility` (public, unlisted, private, direct), `sensitive` (Mastodon);
    `language` (an ISO 639-1 code: Mastodon, Bluesky); `thread` (Bluesky: split text longer
    than one post into a thread instead of failing).
    """

    idempotency_key: str
    text: str
    link: str | None = None
    media: tuple[MediaItem, ...] = ()
    scheduled_for: datetime | None = None
    content_warning: str | None = None
    visibility: str | None = None
    sensitive: bool = False
    language: str | None = None
    thread: bool = False

    def text_with_link(self, separator: str = "\n\n") -> str:
        """The text, with the link appended unless the text already carries it."""
        if not self.link or self.link in self.text:
            return self.text
        return f"{self.text}{separator}{self.link}" if self.text else self.link


@dataclass(frozen=True)
class Published:
    """A post that exists on the network: its id there (what `delete` takes), its public URL
    when the network gives one, and when the network says it was created."""

    external_id: str
    url: str | None = None
    published_at: datetime | None = None


class Connector(ABC):
    """One social network: connecting, keeping connected, and publishing."""

    network: ClassVar[str]
    # OAuth 2 authorization-code networks return an authorization URL on connect; the others
    # take credentials directly (`connect_direct`).
    uses_oauth: ClassVar[bool] = True
    supports_pkce: ClassVar[bool] = False
    # Networks whose account kinds differ (LinkedIn member/organization).
    account_kinds: ClassVar[tuple[str, ...]] = ()

    def missing_configuration(self) -> str | None:
        """The setting an operator must fill before this network can be connected, if any."""
        return None

    # -- what the account services ask of a network ----------------------------------------------
    # So that app/services/accounts.py names no network. The defaults fit a network that is one
    # service, with one OAuth app the operator configures (LinkedIn, X, Facebook, Instagram).

    # How people call the network, in messages.
    display_name: ClassVar[str] = ""
    # Each account lives on a server the person names (a Mastodon instance, a Bluesky PDS)
    # rather than on the network's one service. Connecting through OAuth then needs
    # `instance_url`; connecting with credentials takes the URL in `instance_url_field`.
    per_instance: ClassVar[bool] = False
    instance_url_field: ClassVar[str] = "instance_url"
    # The secret a person types in to connect with credentials: a refusal names this field.
    secret_field: ClassVar[str] = "access_token"
    # Our OAuth app is registered on each instance (`register_app`) instead of configured once.
    # The services keep one registration per instance and hand its client id and secret back
    # in `AuthorizationRequest.extra` (`client_id`, `client_secret`).
    registers_app_per_instance: ClassVar[bool] = False

    def default_instance_url(self) -> str | None:
        """The server of a per-instance network when the person names none."""
        return None

    def app_scopes(self) -> str:
        """The scopes our per-instance app is registered with (they identify the registration)."""
        raise NotSupported(f"{self.network} has one app, configured by the operator.")

    def register_app(self, instance_url: str, redirect_uri: str, scopes: str) -> tuple[str, str]:
        """Register our OAuth app on one instance: its client id and client secret."""
        raise NotSupported(f"{self.network} has one app, configured by the operator.")

    def reconnects_with_credentials(self, data: dict[str, Any]) -> bool:
        """Whether a reconnection with this body takes credentials given directly (else it
        goes through OAuth again)."""
        return not self.uses_oauth

    # -- connecting ----------------------------------------------------------------------------

    def authorization_url(self, request: AuthorizationRequest) -> str:
        raise NotSupported(f"{self.network} does not connect through OAuth.")

    def exchange_code(self, request: AuthorizationRequest, code: str) -> list[ConnectedAccount]:
        """Trade an authorization code for credentials: one account or several (pages)."""
        raise NotSupported(f"{self.network} does not connect through OAuth.")

    def connect_direct(self, data: dict[str, Any]) -> ConnectedAccount:
        """Verify credentials given directly (app password, existing token) against the network."""
        raise NotSupported(f"{self.network} connects through OAuth only.")

    # -- keeping connected ---------------------------------------------------------------------

    @abstractmethod
    def verify(self, secrets: dict[str, Any], instance_url: str | None) -> Identity:
        """Ask the network who these credentials belong to (they work if this succeeds)."""

    def can_refresh(self, secrets: dict[str, Any]) -> bool:
        return bool(secrets.get("refresh_token"))

    def refresh(self, secrets: dict[str, Any], instance_url: str | None) -> TokenSet:
        raise NotSupported(f"{self.network} tokens cannot be refreshed; reconnect instead.")

    @abstractmethod
    def revoke(self, secrets: dict[str, Any], instance_url: str | None) -> None:
        """Tell the network we are done with these credentials."""

    # -- publishing ------------------------------------------------------------------------------

    # How long the network itself refuses to make a second post for one idempotency key,
    # counted from the first attempt: None where it has no such key (a retry after an unknown
    # outcome could post twice, so the caller asks `find_existing` first), `timedelta.max`
    # where the key lasts forever (Bluesky's record key).
    idempotency_window: ClassVar[timedelta | None] = None
    # How often, and how long, to wait for media the network is still processing (videos
    # mostly) before giving up for now: nothing is published meanwhile, so giving up is safe.
    media_poll_seconds: ClassVar[float] = 1.0
    media_wait_seconds: ClassVar[float] = 300.0

    def publish(self, account: NetworkAccount, request: PublishRequest) -> Published:
        """Create the post. Raises TransientNetworkError (nothing was created: retry later),
        OutcomeUnknown (reconcile with `find_existing`), ContentRejected (the network's message),
        CredentialsRejected / TokenExpired, or NetworkError."""
        raise NotSupported(f"Publishing to {self.network} is not available.")

    def find_existing(
        self, account: NetworkAccount, request: PublishRequest, *, since: datetime
    ) -> Published | None:
        """The post `request` made, if an attempt that started at `since` created it; None when
        the network shows no such post (publishing it is then safe). Raises NotSupported when
        the network gives us no way to look: a person must check."""
        raise NotSupported(f"{self.network} cannot be searched for an existing post.")

    def delete(self, account: NetworkAccount, external_id: str) -> None:
        """Remove a published post from the network. A post already gone counts as deleted."""
        raise NotSupported(f"{self.network} does not let us delete posts.")

    def check_token_fresh(self, account: NetworkAccount) -> None:
        """TokenExpired (refresh first) or CredentialsRejected (nothing to refresh with) when
        the access token has run out or is about to, before any request is sent."""
        expires = account.token_expires_at
        if expires is None or expires > datetime.now(UTC) + TOKEN_MARGIN:
            return
        if self.can_refresh(account.secrets):
            raise TokenExpired(f"the {self.network} access token has expired; refresh it")
        raise CredentialsRejected(f"the {self.network} access token has expired")


# A token this close to its end could die in flight.
TOKEN_MARGIN = timedelta(seconds=60)
_SPACES = re.compile(r"\s+")
_URLS = re.compile(r"https?://\S+")


def same_text(sent: str, found: str) -> bool:
    """Whether a post's text as the network shows it is the text we sent: whitespace runs
    and URLs ignored, since networks shorten (t.co), render or re-space them."""

    def plain(text: str) -> str:
        return _SPACES.sub(" ", _URLS.sub(" ", text)).strip()

    return plain(sent) == plain(found)
