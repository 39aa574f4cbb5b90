"""npm packages the suite runs: a real Bluesky PDS, and the tools a front-end developer runs on
our spec (redocly, openapi-typescript, tsc).

Each set is installed once into its own folder of RELAIS_PEERS_CACHE (default
~/.cache/relais-peers) and reused by later runs. Where Node or npm is missing or too old, or the
install fails (offline, a firewall, a registry that refuses), the tests that need the packages
skip and print why: a machine without the npm registry still runs the rest of the suite green.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

# Per request, and how often npm retries one: npm's own defaults (5 minutes, twice, with
# backoff) keep a firewalled machine waiting a quarter of an hour before it gives up. The
# environment still wins (`npm_config_fetch_retries=0`, say).
NPM_DEFAULTS = {"npm_config_fetch_timeout": "60000", "npm_config_fetch_retries": "1"}


class NpmUnavailable(Exception):
    """These npm packages cannot be installed or run here; the message says why."""


def cache_root() -> Path:
    return Path(os.environ.get("RELAIS_PEERS_CACHE") or Path.home() / ".cache" / "relais-peers")


def check_node(minimum: tuple[int, int] = (18, 0)) -> None:
    """Raise NpmUnavailable unless `node` and `npm` are installed and Node is recent enough."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise NpmUnavailable(f"`{tool}` is not installed")
    try:
        found = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise NpmUnavailable(f"`node --version` failed: {exc}") from exc
    match = re.match(r"v(\d+)\.(\d+)", found)
    if match is None or (int(match[1]), int(match[2])) < minimum:
        raise NpmUnavailable(f"Node {found} is too old (needs {minimum[0]}.{minimum[1]} or later)")


def _installed(target: Path, packages: list[str]) -> bool:
    """Every package is in node_modules at the version asked for (npm rolls a failed install
    back, so a package present at its version was installed whole)."""
    for spec in packages:
        name, _, version = spec.rpartition("@")
        manifest = target / "node_modules" / name / "package.json"
        try:
            if json.loads(manifest.read_text())["version"] != version:
                return False
        except (OSError, ValueError, KeyError):
            return False
    return True


def install(folder: str, packages: list[str], *, timeout: float = 600) -> Path:
    """Install `packages` (each `name@exact-version`) into the cache folder once; a file lock
    guards parallel runs. Returns the folder (its `node_modules` holds them)."""
    target = cache_root() / folder
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed(target, packages):
            return target
        (target / "package.json").write_text(
            json.dumps({"name": f"relais-{folder}", "private": True}) + "\n"
        )
        command = [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            *packages,
        ]
        try:
            done = subprocess.run(
                command,
                cwd=target,
                env={**NPM_DEFAULTS, **os.environ},
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise NpmUnavailable(f"`npm install` took over {timeout:.0f}s: {packages}") from exc
        except OSError as exc:
            raise NpmUnavailable(f"`npm install` could not run: {exc}") from exc
        if done.returncode != 0:
            output = (done.stderr or done.stdout).strip().splitlines()
            tail = "\n".join(output[-8:])
            raise NpmUnavailable(
                f"`npm install {' '.join(packages)}` failed (exit {done.returncode}; offline, "
                f"or the npm registry is out of reach?):\n{tail}"
            )
        if not _installed(target, packages):
            raise NpmUnavailable(f"`npm install` ended without installing {packages}")
    return target


def skip(reason: str) -> None:
    """Skip the test, printing the reason where `pytest -s` shows it (and `-ra` lists it)."""
    print(f"\nskipping: {reason}")
    pytest.skip(reason)


def require(
    folder: str, packages: list[str], *, node: tuple[int, int] = (18, 0), timeout: float = 600
) -> Path:
    """For a fixture: the installed folder, or a skip that says why it cannot be had here."""
    try:
        check_node(node)
        return install(folder, packages, timeout=timeout)
    except NpmUnavailable as exc:
        skip(str(exc))
        raise  # pytest.skip raised already; this keeps type checkers informed
