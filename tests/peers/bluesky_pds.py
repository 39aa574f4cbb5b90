"""A real Bluesky PDS for the suite: install once into a cache, start on free ports on
127.0.0.1, wait until it answers, create accounts, stop.

The npm packages (@atproto/pds 0.4.x, which runs on Node 20, and @did-plc/server for the PLC
directory that account creation needs) are installed into RELAIS_PEERS_CACHE (default
~/.cache/relais-peers) on first use, ~1.5 min, and reused by later runs (see `tests.peers.npm`).
Without Node, or when the install fails (offline, firewalled), `BlueskyPds.start_or_skip`
skips the tests that need it and says why.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.peers import npm

PDS_VERSION = "0.4.217"
PLC_VERSION = "0.0.1"
PACKAGES = [f"@atproto/pds@{PDS_VERSION}", f"@did-plc/server@{PLC_VERSION}"]
SCRIPT = Path(__file__).with_suffix(".js")
READY_TIMEOUT_SECONDS = 90
INSTALL_TIMEOUT_SECONDS = 900


def install() -> Path:
    """The cache folder with the PDS installed (raises npm.NpmUnavailable when it cannot be)."""
    npm.check_node((18, 0))
    return npm.install(f"bluesky-pds-{PDS_VERSION}", PACKAGES, timeout=INSTALL_TIMEOUT_SECONDS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PdsAccount:
    handle: str
    did: str
    password: str
    app_password: str


class BlueskyPds:
    def __init__(self) -> None:
        self.port = free_port()
        self.plc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_password = secrets.token_hex(16)
        self._tmp = tempfile.TemporaryDirectory(prefix="relais-pds-")
        self._log = Path(self._tmp.name) / "pds.log"
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start_or_skip(cls) -> BlueskyPds:
        """A started PDS, or a skip of the calling test that says why there can be none here.
        Only an install that cannot happen skips: a PDS that installs but fails is an error."""
        pds = cls()
        try:
            modules = install() / "node_modules"
        except npm.NpmUnavailable as exc:
            pds.stop()
            npm.skip(f"the real Bluesky PDS cannot run here: {exc}")
        return pds.start(modules)

    def start(self, modules: Path | None = None) -> BlueskyPds:
        modules = modules or install() / "node_modules"
        data = Path(self._tmp.name)
        env = {
            **os.environ,
            "NODE_PATH": str(modules),
            "RELAIS_PLC_PORT": str(self.plc_port),
            "PDS_HOSTNAME": "localhost",
            "PDS_PORT": str(self.port),
            "PDS_DEV_MODE": "true",
            "PDS_DATA_DIRECTORY": str(data / "data"),
            "PDS_BLOBSTORE_DISK_LOCATION": str(data / "blobs"),
            "PDS_JWT_SECRET": secrets.token_hex(16),
            "PDS_ADMIN_PASSWORD": self.admin_password,
            "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX": secrets.token_hex(32),
            "PDS_DID_PLC_URL": f"http://127.0.0.1:{self.plc_port}",
            "PDS_SERVICE_HANDLE_DOMAINS": ".test",
            "PDS_INVITE_REQUIRED": "false",
            "PDS_CRAWLERS": "",
            "PDS_DISABLE_SSRF_PROTECTION": "true",
            "LOG_ENABLED": "false",
        }
        (data / "data").mkdir()
        (data / "blobs").mkdir()
        log = open(self._log, "wb")  # noqa: SIM115  (kept open for the child's lifetime)
        self._process = subprocess.Popen(
            ["node", str(SCRIPT)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"the PDS exited early:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/xrpc/_health", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the PDS did not answer within {READY_TIMEOUT_SECONDS}s")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def create_account(self, name: str) -> PdsAccount:
        handle = f"{name}.test"
        password = secrets.token_urlsafe(16)
        created = httpx.post(
            f"{self.url}/xrpc/com.atproto.server.createAccount",
            json={"handle": handle, "email": f"{name}@example.com", "password": password},
            timeout=30,
        )
        created.raise_for_status()
        session = created.json()
        app_password = httpx.post(
            f"{self.url}/xrpc/com.atproto.server.createAppPassword",
            json={"name": "relais"},
            headers={"Authorization": f"Bearer {session['accessJwt']}"},
            timeout=30,
        )
        app_password.raise_for_status()
        return PdsAccount(handle, session["did"], password, app_password.json()["password"])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self._tmp.cleanup()
