"""SECRET_KEY: what counts as a real one, and the one `make run` generates for itself.

SECRET_KEY signs access tokens, media links and idempotency copies, and (outside production)
derives the key that encrypts social-account credentials. Whoever knows it can sign an owner
token for any agency, so a value printed in this repository must never sign anything.

A real secret is one an attacker cannot know: not a published value, and long and varied enough
to have been drawn at random. Where it comes from does not matter. The one generated under
`./var` on first run (48 random bytes, file mode 0600) is real by that measure, exactly as one
set by hand is, so `make run HOST=0.0.0.0` may use it; an explicit `SECRET_KEY` that fails the
check is refused in production and beyond loopback. The check cannot prove randomness: it
catches the usual mistakes (a placeholder, blanks, a repeated character, something short).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from pathlib import Path

from app.config import DEFAULT_SECRET_KEY, TestConfig

log = logging.getLogger(__name__)

MIN_LENGTH = 32
# token_hex(16), the shortest random secret we accept, has 32 characters out of 16; fewer
# than 8 distinct ones in it is a one-in-a-million draw, and catches blanks and repeats.
MIN_DISTINCT_CHARACTERS = 8

# Values published in this repository: anyone can sign with them.
PUBLIC_VALUES = {
    DEFAULT_SECRET_KEY: "the development default of earlier versions",
    TestConfig.SECRET_KEY: "the test suite's key",
}

HOW_TO_SET = (
    "set SECRET_KEY to a random value, e.g. "
    "`export SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')`"
)


def weakness(secret: str | None) -> str | None:
    """Why `secret` cannot sign tokens that strangers can reach, or None when it can."""
    value = (secret or "").strip()
    if not value:
        return "SECRET_KEY is empty" if not secret else "SECRET_KEY is only blanks"
    known = PUBLIC_VALUES.get(value)
    if known:
        return f"SECRET_KEY is a published value ({known}): anyone can sign tokens with it"
    if len(value) < MIN_LENGTH:
        return f"SECRET_KEY has {len(value)} characters; at least {MIN_LENGTH} are needed"
    distinct = len(set(value))
    if distinct < MIN_DISTINCT_CHARACTERS:
        return (
            f"SECRET_KEY uses only {distinct} distinct characters; a random value of "
            f"{MIN_LENGTH}+ characters has many more"
        )
    return None


def is_public(secret: str | None) -> bool:
    return (secret or "").strip() in PUBLIC_VALUES


def load_or_create(path: Path) -> str:
    """The development secret kept at `path`, made on first call (random, mode 0600).

    The API's gunicorn workers, the RQ worker, `rq cron` and `relais demo` may all start at
    once: the file is written under a temporary name and linked into place, so exactly one
    value wins and every process reads that one, never a half-written file.
    """
    path = Path(path)
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(value + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
            log.info("generated a development SECRET_KEY into %s (mode 0600)", path)
        except FileExistsError:
            pass  # another process was first: use its value
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return _read(path)


def _read(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        # Readable by others on this machine means known to them: take it back.
        log.warning("%s was readable by other users (mode %o); setting it to 0600", path, mode)
        os.chmod(path, 0o600)
    value = path.read_text().strip()
    problem = weakness(value)
    if problem:
        raise RuntimeError(
            f"{path} does not hold a usable secret ({problem}); delete the file and a new "
            "one is generated"
        )
    return value
