"""npm packages the suite installs (tests/peers/npm.py): when they cannot be had (offline, a
firewall), the tests that need them skip and print why, and never error."""

from __future__ import annotations

import shutil

import pytest

from tests.peers import npm
from tests.peers.bluesky_pds import PACKAGES, BlueskyPds


@pytest.fixture
def unreachable_registry(tmp_path, monkeypatch):
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: there is no install to fail")
    monkeypatch.setenv("RELAIS_PEERS_CACHE", str(tmp_path / "peers"))  # nothing installed yet
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))  # nothing cached either
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")  # nothing listens there
    monkeypatch.setenv("npm_config_fetch_retries", "0")  # fail at once


def test_bluesky_tests_skip_with_the_reason_when_the_install_fails(unreachable_registry, capsys):
    with pytest.raises(pytest.skip.Exception) as skipped:
        BlueskyPds.start_or_skip()
    reason = str(skipped.value)
    assert reason.startswith("the real Bluesky PDS cannot run here: `npm install ")
    assert all(package in reason for package in PACKAGES)
    assert reason in capsys.readouterr().out  # printed, not only kept in pytest's summary


def test_a_failed_install_is_tried_again_next_time(unreachable_registry):
    for _ in range(2):
        with pytest.raises(npm.NpmUnavailable):
            npm.install("left-pad-check", ["left-pad@1.3.0"])


def test_missing_node_skips_with_the_reason(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pytest.skip.Exception, match="`node` is not installed"):
        npm.require("anything", ["left-pad@1.3.0"])
