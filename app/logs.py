"""Log lines that say what they are about: the request or job, and the tenant ids known so far.

Every process (the API, each worker and its jobs, `relais cron`) logs through one root handler
set up by `configure`. A filter stamps each record with the *log context*: the fields bound in
the current request or job, kept in a context variable (so a thread, a request and a job each
see their own). Who binds what:

- the API: `request_id` for the whole request, and the ids in the URL (`brand_id`, `post_id`,
  ...) once routing has matched them (ids only: a value that is not one of our ids is left out);
- `tenancy.set_scope` (thus `enter_agency`): `agency_id`, whichever process enters a tenant;
- a job (`workers/context.py`): `job_id`, `job` (the function's dotted name) and the job's own
  id arguments (`delivery_id`, `agency_id`, ...);
- services, where they learn more: `with logs.bound(post_id=…, brand_id=…):` around the work
  on a delivery once loaded (or `logs.bind(…)`, kept until the request or job ends).

`LOG_FORMAT=json` writes one JSON object per line (`time`, `level`, `logger`, `message`, the
context fields, `exception`); `text` (the default outside production) writes the usual line
with the fields appended as `key=value`. Neither ever carries a secret: only ids are bound.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

# The fields every line may carry, in the order text lines show them.
FIELD_ORDER = (
    "request_id",
    "job_id",
    "job",
    "agency_id",
    "brand_id",
    "post_id",
    "delivery_id",
    "account_id",
    "media_id",
)
_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: ContextVar[Mapping[str, str]] = ContextVar("relais_log_context", default=_EMPTY)

FORMATS = ("text", "json")
_HANDLER_NAME = "relais"


# -- the context ----------------------------------------------------------------------------------


def current() -> Mapping[str, str]:
    """The fields bound now (read-only)."""
    return _context.get()


def _merged(fields: Mapping[str, Any]) -> Mapping[str, str]:
    merged = dict(_context.get())
    for name, value in fields.items():
        if value is None or value == "":
            merged.pop(name, None)
        else:
            merged[name] = str(value)
    return MappingProxyType(merged)


def bind(**fields: Any) -> None:
    """Add fields to the current context until it ends (the request, the job); None removes
    one. Bind ids only: never a token, a name or text a client wrote."""
    _context.set(_merged(fields))


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """The fields for the length of the block; afterwards, the context exactly as before (what
    the block bound inside is dropped too)."""
    token = _context.set(_merged(fields))
    try:
        yield
    finally:
        _context.reset(token)


def start(**fields: Any) -> object:
    """Begin a fresh context (a request): only these fields. Pass the result to `end`."""
    return _context.set(_merged_fresh(fields))


def end(token: object) -> None:
    # Another context (a copied one) raises: leave it be.
    with suppress(ValueError, RuntimeError):
        _context.reset(token)  # type: ignore[arg-type]


def _merged_fresh(fields: Mapping[str, Any]) -> Mapping[str, str]:
    return MappingProxyType({k: str(v) for k, v in fields.items() if v not in (None, "")})


# -- formatting -----------------------------------------------------------------------------------


class ContextFilter(logging.Filter):
    """Copies the log context onto each record (as `relais_context`), where formatters read it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "relais_context"):
            record.relais_context = _context.get()
        return True


def _ordered(record: logging.LogRecord) -> list[tuple[str, Any]]:
    context: Mapping[str, str] = getattr(record, "relais_context", _EMPTY)
    extra: Mapping[str, Any] = getattr(record, "fields", None) or _EMPTY
    pairs = [(name, context[name]) for name in FIELD_ORDER if name in context]
    pairs += [(name, value) for name, value in context.items() if name not in FIELD_ORDER]
    pairs += list(extra.items())
    return pairs


class TextFormatter(logging.Formatter):
    """The usual line, then the context as `key=value` pairs (logfmt style)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = _ordered(record)
        if not pairs:
            return line
        first, newline, rest = line.partition("\n")  # a traceback stays below the line
        suffix = " ".join(f"{name}={_logfmt(value)}" for name, value in pairs)
        return f"{first} {suffix}{newline}{rest}"


def _logfmt(value: Any) -> str:
    text = str(value)
    if text and all(ch.isalnum() or ch in "._:/-" for ch in text):
        return text
    return json.dumps(text, ensure_ascii=False)


class JSONFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for name, value in _ordered(record):
            entry.setdefault(name, value)
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (as logging's last-resort handler does),
    so a stream swapped later (a test's capture, a daemon's redirection) is followed."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def default_format(config: Mapping[str, Any]) -> str:
    return "json" if config.get("ENV") == "production" else "text"


def configure(config: Mapping[str, Any]) -> None:
    """Send every logger's records through one handler on the root logger, in LOG_FORMAT at
    LOG_LEVEL. Idempotent: a second call (a second app in one process) replaces the handler."""
    kind = (config.get("LOG_FORMAT") or default_format(config)).strip().lower()
    if kind not in FORMATS:
        raise RuntimeError(f"LOG_FORMAT={kind!r} is not a log format (text or json).")
    level = (config.get("LOG_LEVEL") or "INFO").strip().upper()
    if not isinstance(logging.getLevelName(level), int):
        raise RuntimeError(f"LOG_LEVEL={level!r} is not a log level (DEBUG, INFO, WARNING, ...).")
    handler = _StderrHandler()
    handler.name = _HANDLER_NAME
    handler.setFormatter(JSONFormatter() if kind == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.name == _HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)


def configure_from_environment() -> None:
    """For processes that build no app (`relais cron`)."""
    from app.config import Config, config_as_dict

    configure(config_as_dict(Config))
