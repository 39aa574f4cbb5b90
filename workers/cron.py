"""`relais cron`: rq's cron scheduler over workers/schedule.py, one at a time per deployment.

rq's own `rq cron` has no notion of "the" scheduler: start two and every periodic job is
enqueued twice (the jobs are idempotent, so that costs work, not correctness). `relais cron`
takes a lock in Redis first, renews it every few seconds, and enqueues only while it holds it.
A second `relais cron`, started by mistake or on purpose on another machine, stands by: it
logs that another one leads and takes over within `LOCK_TTL_SECONDS` of the first one
stopping or dying. A leader that loses the lock (paused longer than the TTL, Redis restarted)
notices before its next enqueue and stands by in turn.

It builds no application and opens no database connection: it only enqueues. It checks the
environment as the API does (workers/schedule.py runs the checks when loaded).
"""

from __future__ import annotations

import logging
import time
from contextlib import suppress
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.cron import CronScheduler
from rq.exceptions import StopRequested

LOCK_KEY = "relais:cron:leader"
LOCK_TTL_SECONDS = 30
# The leader wakes at least this often to renew the lock, well within its TTL.
RENEW_EVERY_SECONDS = 10
# How often a standby tries the lock.
STANDBY_POLL_SECONDS = 5

log = logging.getLogger("relais.cron")


class SingleCronScheduler(CronScheduler):
    """rq's CronScheduler, enqueueing only while it holds the deployment's cron lock."""

    def __init__(self, connection: Any, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._lock = connection.lock(LOCK_KEY, timeout=LOCK_TTL_SECONDS, thread_local=False)
        self.leading = False
        self._announced_standby = False

    def calculate_sleep_interval(self) -> float:
        return min(super().calculate_sleep_interval(), RENEW_EVERY_SECONDS)

    def hold_lock(self) -> bool:
        """Whether this scheduler leads now: it renews the lock it holds, or takes a free one."""
        if self.leading:
            try:
                self._lock.reacquire()
                return True
            except LockError:
                self.leading = False
                log.warning("relais cron %s lost the cron lock; standing by", self.name)
        if self._lock.acquire(blocking=False):
            self.leading = True
            self._announced_standby = False
            log.info("relais cron %s leads: it enqueues the periodic jobs", self.name)
            return True
        if not self._announced_standby:
            self._announced_standby = True
            log.warning(
                "another relais cron holds the cron lock; %s stands by and takes over if it "
                "stops (one is enough: stop this one unless it is meant as a standby)",
                self.name,
            )
        return False

    def start(self) -> None:
        """rq's loop, with the lock: enqueue what is due only while leading."""
        log.info("relais cron %s starting with %d periodic jobs", self.name, len(self._cron_jobs))
        self._install_signal_handlers()
        self.register_birth()
        try:
            while True:
                try:
                    if self.hold_lock():
                        if self.enqueue_jobs():
                            self.save()
                        pause = self.calculate_sleep_interval()
                    else:
                        pause = STANDBY_POLL_SECONDS
                    self.heartbeat()
                except (RedisConnectionError, RedisTimeoutError) as exc:
                    # Redis restarting: wait for it rather than exit (the lock, if still ours
                    # when it is back, is renewed; if not, another cron leads).
                    log.warning("relais cron %s: Redis unreachable (%s); retrying", self.name, exc)
                    pause = STANDBY_POLL_SECONDS
                if pause > 0:
                    time.sleep(pause)
        except (KeyboardInterrupt, StopRequested):
            log.info("relais cron %s stopping", self.name)
        finally:
            if self.leading:
                # At once, rather than after the TTL: a standby takes over without a gap.
                with suppress(LockError, RedisError):
                    self._lock.release()
                self.leading = False
            self.register_death()


def run() -> None:
    """Load workers/schedule.py and run the scheduler until stopped (SIGTERM, Ctrl-C)."""
    import redis

    from app import logs
    from app.config import Config
    from app.startup import refuse_unsafe_environment

    refuse_unsafe_environment("relais cron")
    try:
        logs.configure_from_environment()
    except RuntimeError as exc:  # LOG_FORMAT or LOG_LEVEL unreadable
        raise SystemExit(f"[relais] relais cron refusing to start: {exc}") from None
    connection = redis.Redis.from_url(Config.REDIS_URL)
    scheduler = SingleCronScheduler(connection)
    scheduler.load_config_from_file("workers.schedule")
    scheduler.start()
