"""What differs between networks is asked of the connector (the hooks in app/networks/base.py),
never decided by the account services on a network's name."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from app import networks
from app.schemas.accounts import DirectConnectSchema, ReconnectSchema

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT_SERVICES = ("accounts", "oauth_states", "instance_apps", "token_refresh", "key_rotation")


def _connector_class(network: str) -> type:
    module_name, class_name = networks._CONNECTOR_CLASSES[network].split(":")
    return getattr(importlib.import_module(module_name), class_name)


@pytest.mark.parametrize("module", ACCOUNT_SERVICES)
def test_the_account_services_name_no_network(module: str) -> None:
    tree = ast.parse((ROOT / "app" / "services" / f"{module}.py").read_text())
    named = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in networks._CONNECTOR_CLASSES
    }
    assert named == set(), f"{module}.py decides on {named}: add a hook to the connector instead"


@pytest.mark.parametrize("network", sorted(networks._CONNECTOR_CLASSES))
def test_every_connector_names_itself(network: str) -> None:
    assert _connector_class(network).display_name


@pytest.mark.parametrize("network", networks.DIRECT_NETWORKS)
def test_direct_networks_read_fields_the_api_takes(network: str) -> None:
    connector = _connector_class(network)
    direct, reconnect = DirectConnectSchema().fields, ReconnectSchema().fields
    assert connector.secret_field in direct and connector.secret_field in reconnect
    if connector.per_instance:
        assert connector.instance_url_field in direct


def test_per_instance_apps_exist_only_on_per_instance_networks() -> None:
    for network in networks._CONNECTOR_CLASSES:
        connector = _connector_class(network)
        if connector.registers_app_per_instance:
            assert connector.per_instance and connector.uses_oauth, network
