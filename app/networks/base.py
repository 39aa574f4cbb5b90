"""The one interface every network connector implements.

A connector knows one network's endpoints and nothing about our database: it takes and returns
plain values (credentials as a dict that the service encrypts), and signals failures with the
three errors below, which the services turn into account health and API problems:

- `TransientNetworkError`: timeout, connection failure, 429 or 5xx. Try again later; the
  credentials may well be fine, so never mark an account disconnected for one.
- `CredentialsRejected`: the network said the credentials are dead (401, `invalid_grant`, wrong
  password). The account needs a person to reconnect it.
- `NetworkError`: anything else the network refused (a 4xx we did not expect).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar


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


class Connector(ABC):
    """One social network. Publishing (`publish`) arrives with the publishing workers."""

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

    # -- publishing (not built yet: each connector that publishes overrides this) --------------

    def publish(self, secrets: dict[str, Any], instance_url: str | None, post: Any) -> Any:
        raise NotSupported(f"Publishing to {self.network} is not available yet.")
