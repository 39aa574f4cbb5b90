"""One connector per social network, behind the interface in app.networks.base.

A connector's module is imported the first time that network is used, not with the app: the
SDKs behind them (atproto alone, then Authlib and httpx) were most of the API's start-up time,
paid again by every gunicorn worker and every job, for routes most requests never reach.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.networks.base import Connector

# network -> "module:class"; tests/test_networks_registry.py checks each against its class.
_CONNECTOR_CLASSES = {
    "mastodon": "app.networks.mastodon:MastodonConnector",
    "bluesky": "app.networks.bluesky:BlueskyConnector",
    "linkedin": "app.networks.linkedin:LinkedInConnector",
    "x": "app.networks.x:XConnector",
    "facebook": "app.networks.meta:FacebookConnector",
    "instagram": "app.networks.instagram:InstagramConnector",
}
# Connected through an OAuth 2 authorization code (the connector's `uses_oauth`), and with
# credentials a person types in; written out so that naming them loads no connector.
OAUTH_NETWORKS = ("mastodon", "linkedin", "x", "facebook", "instagram")
DIRECT_NETWORKS = ("bluesky", "mastodon")

_connectors: dict[str, Connector] = {}


def connector_for(network: str) -> Connector:
    connector = _connectors.get(network)
    if connector is None:
        module_name, class_name = _CONNECTOR_CLASSES[network].split(":")
        connector = getattr(importlib.import_module(module_name), class_name)()
        _connectors[network] = connector
    return connector


def load_all() -> None:
    """Import every connector, and build the TLS context their clients share, now: `relais
    worker` does it once, before forking, so that no publish job pays for an SDK import
    (atproto alone takes seconds on a busy machine, which would make a Bluesky post that late)
    or for loading the CA bundle."""
    from app.networks import http

    for network in _CONNECTOR_CLASSES:
        connector_for(network)
    http.prepare()
