"""Relais's own processes, for real: `relais worker` and `relais cron` started as subprocesses
on the test database and Redis, killed the hard way and started again.

A fault test wants what production has: workers that fork a work horse per job (rq does, and
the horse makes itself a process-group leader, so killing the worker's group leaves the horse
running), a cron that leads alone, and crashes at any instant. `RelaisProcesses` starts them
with `PYTHONPATH` set to this checkout, each in its own session, logs each to a file, and knows
each worker's process tree:

    with RelaisProcesses(process_env(app.config, tmp_path), tmp_path) as processes:
        worker = processes.start_worker()
        processes.start_cron()
        processes.wait_until_ready(worker)
        processes.crash(worker)          # SIGKILL the worker, its horse and its scheduler
        processes.kill_horse(worker)     # SIGKILL the job being run; the worker carries on
        worker = processes.restart(worker)

Waiting is always bounded (`wait_until`): a machine shared by several test runs may be slow,
so the bounds are generous, and nothing here measures speed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis

from app.config import TestConfig

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Not TestConfig's key: the processes refuse a published one, as in production.
PROCESS_SECRET_KEY = "Vq3-7bX_kP9zR2mL8wN4tY6uH1jC5sD0fG-faults"
# Each process imports and builds the app on a machine other test runs share.
START_SECONDS = 120.0
STOP_SECONDS = 30.0


def process_env(settings: Mapping[str, Any], workdir: Path, **overrides: str) -> dict[str, str]:
    """The environment of a worker or cron of the deployment `settings` describe (the test
    app's config: its database, the run-time role on PostgreSQL, its Redis, media and mail
    folders, and credential keys, since the processes decrypt the accounts the app stored),
    with networks on 127.0.0.1 only. `overrides` win."""
    keys = settings.get("CREDENTIALS_ENCRYPTION_KEYS") or TestConfig.CREDENTIALS_ENCRYPTION_KEYS
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(workdir)),
        "PYTHONPATH": str(ROOT),
        "RELAIS_ENV": "development",
        "SECRET_KEY": PROCESS_SECRET_KEY,
        "DATABASE_URL": settings["DATABASE_URL"],
        "REDIS_URL": settings["REDIS_URL"],
        "MEDIA_ROOT": settings.get("MEDIA_ROOT") or str(workdir / "media"),
        "MAIL_DIR": settings.get("MAIL_DIR") or str(workdir / "mail"),
        "CREDENTIALS_ENCRYPTION_KEYS": ",".join(keys),
        "ALLOW_PRIVATE_NETWORK_TARGETS": "1",
        "NETWORK_TARGETS_LOOPBACK_ONLY": "1",
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "INFO",
    }
    env.update(overrides)
    return env


def wait_until(
    check: Callable[[], object], what: str, seconds: float = START_SECONDS, every: float = 0.2
) -> object:
    """`check()`'s first truthy answer, or AssertionError naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds:.0f}s")
        time.sleep(every)


@dataclass
class RelaisProcess:
    """One started process: `kind` is "worker" or "cron"; `name` is the worker's rq name."""

    kind: str
    name: str
    args: list[str]
    popen: subprocess.Popen[bytes]
    log: Path
    generation: int = 1
    killed: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def descendants(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            return psutil.Process(self.pid).children(recursive=True)
        return []

    def horse(self) -> psutil.Process | None:
        """The work horse running a job now, if any: the worker's child that leads its own
        process group (rq's scheduler, the other child, stays in the worker's group)."""
        for child in self.descendants():
            with contextlib.suppress(psutil.Error):
                if os.getpgid(child.pid) == child.pid and child.status() != psutil.STATUS_ZOMBIE:
                    return child
        return None

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])


class RelaisProcesses:
    """The processes of one test; `stop_all` (or leaving the `with`) ends every one of them,
    work horses included."""

    def __init__(self, env: Mapping[str, str], workdir: Path) -> None:
        self.env = dict(env)
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.processes: list[RelaisProcess] = []
        self.redis = redis.Redis.from_url(self.env["REDIS_URL"])

    def __enter__(self) -> RelaisProcesses:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop_all()

    # -- starting --------------------------------------------------------------------------

    def _spawn(self, kind: str, name: str, args: list[str], generation: int) -> RelaisProcess:
        log = self.workdir / f"{name}.log"
        popen = subprocess.Popen(
            [str(BIN / "relais"), *args],
            env=self.env,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log.open("ab"),
            start_new_session=True,
        )
        process = RelaisProcess(kind, name, args, popen, log, generation)
        self.processes.append(process)
        return process

    def start_worker(
        self, name: str | None = None, *, queues: tuple[str, ...] = (), scheduler: bool = True
    ) -> RelaisProcess:
        """`relais worker` (with rq's scheduler, as `make run` starts it) on every queue, or
        on `queues`. Its rq name is `name` made unique: a restarted worker, or one of the next
        test, must not meet a killed one's registration in Redis."""
        base = f"{name or 'worker'}-{uuid.uuid4().hex[:6]}"
        return self._start_worker(base, queues, scheduler, generation=1)

    def _start_worker(
        self, base: str, queues: tuple[str, ...], scheduler: bool, generation: int
    ) -> RelaisProcess:
        name = f"{base}.{generation}"
        args = ["worker", "--name", name, *queues]
        if not scheduler:
            args.append("--without-scheduler")
        return self._spawn("worker", name, args, generation)

    def start_cron(self, name: str | None = None) -> RelaisProcess:
        return self._spawn("cron", name or f"cron-{uuid.uuid4().hex[:6]}", ["cron"], 1)

    def restart(self, process: RelaisProcess) -> RelaisProcess:
        """The same process started again (a worker under a new generation of its name), after
        making sure nothing of the old one still runs."""
        self.crash(process)
        if process.kind == "cron":
            return self._spawn("cron", process.name, process.args, process.generation + 1)
        base = process.name.rsplit(".", 1)[0]
        queues = tuple(a for a in process.args[3:] if not a.startswith("--"))
        scheduler = "--without-scheduler" not in process.args
        return self._start_worker(base, queues, scheduler, process.generation + 1)

    def wait_until_ready(self, process: RelaisProcess, seconds: float = START_SECONDS) -> None:
        """A worker has registered in Redis (it takes jobs from now on); a cron has said who
        leads. Fails with the process's log when it exits first."""

        def ready() -> bool:
            if not process.alive:
                raise AssertionError(
                    f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}"
                )
            if process.kind == "worker":
                return bool(self.redis.exists(f"rq:worker:{process.name}"))
            text = process.output()
            return " leads" in text or "stands by" in text

        wait_until(ready, f"{process.name} ready", seconds)

    # -- killing ---------------------------------------------------------------------------

    def crash(self, process: RelaisProcess) -> None:
        """SIGKILL the process and everything it forked (the horse leads its own group, so a
        signal to the worker's group would miss it), as a machine losing power would."""
        if not process.alive:
            self._kill_tree([], process)
            return
        family = process.descendants()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        self._kill_tree(family, process)
        process.killed.append("crash")

    def _kill_tree(self, family: list[psutil.Process], process: RelaisProcess) -> None:
        for member in family:
            with contextlib.suppress(psutil.Error):
                member.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(timeout=STOP_SECONDS)
        psutil.wait_procs(family, timeout=STOP_SECONDS)

    def kill_worker_only(self, process: RelaisProcess) -> psutil.Process | None:
        """SIGKILL the worker and its scheduler, not the horse: the job it runs finishes with
        nobody to report to (what an OOM kill of the parent does). Returns the orphaned horse."""
        horse = process.horse()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(timeout=STOP_SECONDS)
        process.killed.append("worker")
        return horse

    @staticmethod
    def wait_gone(process: psutil.Process | None, seconds: float = STOP_SECONDS) -> None:
        """Wait for a process we did not start (an orphaned horse) to end by itself."""
        if process is not None:
            _, alive = psutil.wait_procs([process], timeout=seconds)
            assert not alive, f"process {process.pid} still running after {seconds}s"

    def kill_horse(self, process: RelaisProcess) -> bool:
        """SIGKILL the job the worker runs now, if any (True when there was one); the worker
        sees its horse die and carries on with the next job."""
        horse = process.horse()
        if horse is None:
            return False
        with contextlib.suppress(psutil.Error):
            horse.kill()
            horse.wait(timeout=STOP_SECONDS)
        process.killed.append("horse")
        return True

    def wait_until_busy(self, process: RelaisProcess, seconds: float) -> bool:
        """Whether the worker started a job (forked a horse) within `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if process.horse() is not None:
                return True
            time.sleep(0.01)
        return False

    # -- stopping --------------------------------------------------------------------------

    def stop(self, process: RelaisProcess) -> None:
        """SIGTERM (a worker finishes its job, a cron hands the lead over), SIGKILL after
        `STOP_SECONDS`; orphaned horses are killed too."""
        family = process.descendants()
        if process.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.popen.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.crash(process)
        self._kill_tree(family, process)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            self.stop(process)
        self.redis.close()

    def workers(self) -> list[RelaisProcess]:
        return [p for p in self.processes if p.kind == "worker" and p.alive]

    def ready_workers(self) -> list[RelaisProcess]:
        """The live workers registered in Redis, taking jobs."""
        return [w for w in self.workers() if self.redis.exists(f"rq:worker:{w.name}")]

    def lines_about(self, word: str) -> list[str]:
        """Every line of every process's log that mentions `word` (a delivery id, say)."""
        return [
            f"{p.name}: {line}"
            for p in self.processes
            for line in p.output().splitlines()
            if word in line
        ]

    def logs(self) -> str:
        """Every process's log, each under its name (for a failing test's message)."""
        return "\n".join(f"--- {p.name} ---\n{p.tail(60)}" for p in self.processes)
