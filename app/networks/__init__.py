"""One connector per social network, behind the interface in app.networks.base."""

from __future__ import annotations

from app.networks.base import Connector
from app.networks.bluesky import BlueskyConnector
from app.networks.linkedin import LinkedInConnector
from app.networks.mastodon import MastodonConnector
from app.networks.meta import FacebookConnector, InstagramConnector
from app.networks.x import XConnector

_CONNECTORS: dict[str, Connector] = {
    connector.network: connector
    for connector in (
        MastodonConnector(),
        BlueskyConnector(),
        LinkedInConnector(),
        XConnector(),
        FacebookConnector(),
        InstagramConnector(),
    )
}

OAUTH_NETWORKS = tuple(n for n, c in _CONNECTORS.items() if c.uses_oauth)
DIRECT_NETWORKS = ("bluesky", "mastodon")


def connector_for(network: str) -> Connector:
    return _CONNECTORS[network]
