"""Configuration read from the environment (12-factor).

Every variable is documented in the README's table; keep the two in step.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# The development default of earlier versions. It is published, so nothing may sign with it:
# every process refuses it (app/startup.py); `make run` generates a secret of its own instead.
DEFAULT_SECRET_KEY = "dev-insecure-secret-key-change-me"
# Local data (the SQLite database, media files) defaults to ./var of the directory the process
# starts in, never to a folder beside the code: once installed, that is site-packages.
VAR_DIR = Path.cwd() / "var"


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def normalize_database_url(url: str) -> str:
    """Let people write the usual `postgresql://` URL; we always drive psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Config:
    ENV = os.environ.get("RELAIS_ENV", "development")
    # Unset in development: create_app reads (or makes, on first run) SECRET_KEY_FILE, so the
    # API, the worker, `relais cron` and `relais demo` of one checkout share one random secret.
    # Production refuses to start without a real one (app/security/secret_key.py says what
    # counts as real).
    SECRET_KEY = os.environ.get("SECRET_KEY", "")
    SECRET_KEY_FILE = str(VAR_DIR / "secret_key")

    # The URL the app connects with at run time; on PostgreSQL this role must be neither the
    # tables' owner nor a superuser, so Row-Level Security applies to it.
    DATABASE_URL = normalize_database_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'relais.db'}")
    )
    # The URL migrations run with (the owner of the tables). Defaults to DATABASE_URL.
    MIGRATION_DATABASE_URL = normalize_database_url(
        os.environ.get("MIGRATION_DATABASE_URL", "") or DATABASE_URL
    )
    DATABASE_POOL_SIZE = int(os.environ.get("DATABASE_POOL_SIZE", "5"))
    # A read-only role for pg_dump (created once, with BYPASSRLS, by a superuser): forced RLS
    # stops even the owner from dumping, so `relais db upgrade` grants this role SELECT on
    # every table. Empty: no backup role is managed.
    BACKUP_DATABASE_ROLE = os.environ.get("BACKUP_DATABASE_ROLE", "")

    REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

    ACCESS_TOKEN_TTL_SECONDS = int(os.environ.get("ACCESS_TOKEN_TTL_SECONDS", "900"))
    REFRESH_TOKEN_TTL_SECONDS = int(os.environ.get("REFRESH_TOKEN_TTL_SECONDS", str(30 * 86400)))
    INVITATION_TTL_SECONDS = int(os.environ.get("INVITATION_TTL_SECONDS", str(7 * 86400)))
    IDEMPOTENCY_TTL_SECONDS = 24 * 3600

    # Password guessing (app/services/throttle.py): each source address waits, longer and
    # longer, after a few failures on one account; an address has a ceiling across accounts;
    # nothing locks the account itself. A burst of failures on an account is reported.
    LOGIN_FAILURES_BEFORE_DELAY = int(os.environ.get("LOGIN_FAILURES_BEFORE_DELAY", "3"))
    LOGIN_DELAY_SECONDS = int(os.environ.get("LOGIN_DELAY_SECONDS", "2"))
    LOGIN_MAX_DELAY_SECONDS = int(os.environ.get("LOGIN_MAX_DELAY_SECONDS", "900"))
    LOGIN_FAILURE_MEMORY_SECONDS = int(os.environ.get("LOGIN_FAILURE_MEMORY_SECONDS", "86400"))
    LOGIN_MAX_FAILURES_PER_IP = int(os.environ.get("LOGIN_MAX_FAILURES_PER_IP", "50"))
    LOGIN_IP_WINDOW_SECONDS = int(os.environ.get("LOGIN_IP_WINDOW_SECONDS", "900"))
    LOGIN_BURST_FAILURES = int(os.environ.get("LOGIN_BURST_FAILURES", "10"))
    LOGIN_BURST_WINDOW_SECONDS = int(os.environ.get("LOGIN_BURST_WINDOW_SECONDS", "3600"))

    # argon2id cost; the defaults are argon2-cffi's (RFC 9106 low-memory profile).
    PASSWORD_HASH_TIME_COST = int(os.environ.get("PASSWORD_HASH_TIME_COST", "3"))
    PASSWORD_HASH_MEMORY_COST = int(os.environ.get("PASSWORD_HASH_MEMORY_COST", "65536"))

    # The largest request body, in bytes (a 413 beyond it, judged from Content-Length before
    # the body is read). Routes that take files declare their own limit instead: media upload
    # (MEDIA_MAX_BYTES) and CSV import (its 1 MiB of CSV), see app.api.http.body_limit.
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", str(1024 * 1024)))

    # Media storage (app/storage/; keys are agency/brand/file). `local`, the embedded default,
    # keeps files under MEDIA_ROOT: ./var/media when unset, which production refuses (name a
    # disk, or a volume every machine mounts). `s3` keeps them in a bucket of any S3-compatible
    # store, which every API process and worker reaches from any machine. Credentials: the S3_
    # pair when set, else boto3's usual chain (AWS_ACCESS_KEY_ID..., profiles, instance roles).
    MEDIA_STORAGE = os.environ.get("MEDIA_STORAGE", "local")
    MEDIA_ROOT = os.environ.get("MEDIA_ROOT", "")
    S3_BUCKET = os.environ.get("S3_BUCKET", "")
    S3_PREFIX = os.environ.get("S3_PREFIX", "")
    S3_ENDPOINT_URL = os.environ.get("S3_ENDPOINT_URL", "")
    S3_REGION = os.environ.get("S3_REGION", "")
    S3_ACCESS_KEY_ID = os.environ.get("S3_ACCESS_KEY_ID", "")
    S3_SECRET_ACCESS_KEY = os.environ.get("S3_SECRET_ACCESS_KEY", "")
    # boto3 picks path-style URLs whenever an endpoint is set; some stores want `virtual`.
    S3_ADDRESSING_STYLE = os.environ.get("S3_ADDRESSING_STYLE", "auto")
    # Upload limits. The per-type maxima are the largest any supported network takes (LinkedIn
    # images 20 MB, our 1 GB cap on Facebook videos); each network's own lower limits are checked
    # when a post is validated (app/services/content_rules.py), not at upload.
    MEDIA_MAX_IMAGE_BYTES = int(os.environ.get("MEDIA_MAX_IMAGE_BYTES", str(20_000_000)))
    MEDIA_MAX_VIDEO_BYTES = int(os.environ.get("MEDIA_MAX_VIDEO_BYTES", str(1_000_000_000)))
    MEDIA_MAX_BYTES = int(os.environ.get("MEDIA_MAX_BYTES", str(1_000_000_000)))
    # How long a signed media link (for networks that fetch media by URL) stays valid.
    MEDIA_LINK_TTL_SECONDS = int(os.environ.get("MEDIA_LINK_TTL_SECONDS", "3600"))

    CORS_ORIGINS = [o.strip() for o in os.environ.get("CORS_ORIGINS", "").split(",") if o.strip()]
    # Two addresses that used to be one: where this API is reached (signed media links that
    # networks download, the pages Relais serves itself) and where the agency's front end lives
    # (links in e-mails: accept an invitation, verify an address, reset a password). With no
    # front end configured, those links point at Relais's own minimal pages under API_BASE_URL.
    # PUBLIC_BASE_URL is the old name of API_BASE_URL, still read.
    API_BASE_URL = (
        os.environ.get("API_BASE_URL")
        or os.environ.get("PUBLIC_BASE_URL")
        or "http://127.0.0.1:8000"
    )
    FRONTEND_BASE_URL = os.environ.get("FRONTEND_BASE_URL", "")
    TRUST_PROXY_HEADERS = _bool("TRUST_PROXY_HEADERS", False)

    # -- mail (app/mail, app/services/outbox.py) ---------------------------------------------
    # `smtp://user:password@host:587` speaks STARTTLS (required; `?starttls=false` for a relay
    # on the same machine that does not offer it); `smtps://user:password@host:465` is TLS from
    # the first byte. Unset: each message is written as an .eml file under MAIL_DIR and
    # announced in the worker's log, so `make run` needs no mail server. Production refuses to
    # start without SMTP_URL and MAIL_FROM.
    SMTP_URL = os.environ.get("SMTP_URL", "")
    SMTP_TIMEOUT_SECONDS = float(os.environ.get("SMTP_TIMEOUT_SECONDS", "30"))
    MAIL_FROM = os.environ.get("MAIL_FROM", "")
    MAIL_DIR = os.environ.get("MAIL_DIR", str(VAR_DIR / "mail"))
    # Seconds before each retry after a temporary failure (a 4xx, a lost connection); as many
    # retries as values. The message is marked failed after the last one.
    MAIL_RETRY_INTERVALS = [
        int(s)
        for s in os.environ.get("MAIL_RETRY_INTERVALS", "30,120,600,1800,7200").split(",")
        if s.strip()
    ]
    SIGNUP_VERIFICATION_TTL_SECONDS = int(
        os.environ.get("SIGNUP_VERIFICATION_TTL_SECONDS", str(24 * 3600))
    )
    PASSWORD_RESET_TTL_SECONDS = int(os.environ.get("PASSWORD_RESET_TTL_SECONDS", "3600"))

    # -- outgoing webhooks (app/services/webhooks.py, app/services/webhook_delivery.py) -------
    # One attempt waits this long at most to connect and for each read; the answer's body is
    # read up to 1 KiB, redirects are not followed.
    WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "5"))
    # Attempts per delivery, the first included; between two, BASE × 3^(n-1) seconds (at most
    # MAX_DELAY), each ±20 % at random. The defaults: 9 attempts over about 26 hours.
    WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("WEBHOOK_MAX_ATTEMPTS", "9"))
    WEBHOOK_RETRY_BASE_SECONDS = float(os.environ.get("WEBHOOK_RETRY_BASE_SECONDS", "60"))
    WEBHOOK_RETRY_MAX_DELAY_SECONDS = float(
        os.environ.get("WEBHOOK_RETRY_MAX_DELAY_SECONDS", "36000")
    )
    # After `rotate-secret`, the previous secret keeps signing, beside the new one, this long
    # (unless the request names its own overlap).
    WEBHOOK_SECRET_OVERLAP_SECONDS = int(os.environ.get("WEBHOOK_SECRET_OVERLAP_SECONDS", "86400"))
    # An endpoint that has answered nothing with 2xx for this long is disabled (and its agency's
    # owners told by mail) when one more of its deliveries runs out of attempts.
    WEBHOOK_DISABLE_AFTER_SECONDS = int(
        os.environ.get("WEBHOOK_DISABLE_AFTER_SECONDS", str(3 * 86400))
    )
    # Events and their delivery logs are kept this many days.
    WEBHOOK_LOG_RETENTION_DAYS = int(os.environ.get("WEBHOOK_LOG_RETENTION_DAYS", "30"))

    # flask-smorest / OpenAPI
    API_TITLE = "Relais API"
    API_VERSION = "v1"
    # 3.1: its "this schema, or null" is read right by every generator (see app/openapi.py).
    OPENAPI_VERSION = "3.1.0"
    OPENAPI_URL_PREFIX = "/"
    OPENAPI_JSON_PATH = "openapi.json"
    # /docs is ours (app/api/docs.py): Swagger UI from an installed package, not a CDN.
    JSON_SORT_KEYS = False

    # -- social accounts ---------------------------------------------------------------------
    # Fernet keys (urlsafe base64, 32 bytes), comma-separated, newest first: the first encrypts,
    # all of them decrypt. Rotate by putting a new key first, then `relais accounts rotate-keys`,
    # then dropping the old one. Production refuses to start without it.
    CREDENTIALS_ENCRYPTION_KEYS = [
        k.strip() for k in os.environ.get("CREDENTIALS_ENCRYPTION_KEYS", "").split(",") if k.strip()
    ]
    # Instance and PDS URLs given by users must resolve to public addresses unless this is set.
    ALLOW_PRIVATE_NETWORK_TARGETS = _bool("ALLOW_PRIVATE_NETWORK_TARGETS", False)
    # Test safety net: every outgoing request must go to a loopback IP literal or localhost,
    # checked before any DNS look-up, so no test can reach a real network by mistake.
    NETWORK_TARGETS_LOOPBACK_ONLY = _bool("NETWORK_TARGETS_LOOPBACK_ONLY", False)
    NETWORK_HTTP_TIMEOUT_SECONDS = float(os.environ.get("NETWORK_HTTP_TIMEOUT_SECONDS", "15"))
    OAUTH_STATE_TTL_SECONDS = int(os.environ.get("OAUTH_STATE_TTL_SECONDS", "900"))
    # Where networks send the browser back: the front-end page that posts `code` and `state`
    # to POST /v1/brands/{brand_id}/accounts/callback. Register it with every network's app.
    OAUTH_REDIRECT_URI = os.environ.get("OAUTH_REDIRECT_URI", "") or (
        (FRONTEND_BASE_URL or API_BASE_URL).rstrip("/") + "/oauth/callback"
    )
    # Tokens expiring within this window are refreshed (or the account marked `expiring`).
    TOKEN_REFRESH_MARGIN_SECONDS = int(os.environ.get("TOKEN_REFRESH_MARGIN_SECONDS", "86400"))
    MASTODON_APP_NAME = os.environ.get("MASTODON_APP_NAME", "Relais")
    MASTODON_APP_WEBSITE = os.environ.get("MASTODON_APP_WEBSITE", "")
    MASTODON_SCOPES = os.environ.get("MASTODON_SCOPES", "read:accounts write:statuses write:media")
    BLUESKY_DEFAULT_PDS_URL = os.environ.get("BLUESKY_DEFAULT_PDS_URL", "https://bsky.social")
    LINKEDIN_CLIENT_ID = os.environ.get("LINKEDIN_CLIENT_ID", "")
    LINKEDIN_CLIENT_SECRET = os.environ.get("LINKEDIN_CLIENT_SECRET", "")
    LINKEDIN_OAUTH_URL = os.environ.get("LINKEDIN_OAUTH_URL", "https://www.linkedin.com/oauth/v2")
    LINKEDIN_API_URL = os.environ.get("LINKEDIN_API_URL", "https://api.linkedin.com")
    X_CLIENT_ID = os.environ.get("X_CLIENT_ID", "")
    X_CLIENT_SECRET = os.environ.get("X_CLIENT_SECRET", "")
    X_AUTHORIZE_URL = os.environ.get("X_AUTHORIZE_URL", "https://x.com/i/oauth2/authorize")
    X_API_URL = os.environ.get("X_API_URL", "https://api.x.com")
    META_APP_ID = os.environ.get("META_APP_ID", "")
    META_APP_SECRET = os.environ.get("META_APP_SECRET", "")
    META_AUTHORIZE_URL = os.environ.get(
        "META_AUTHORIZE_URL", "https://www.facebook.com/v21.0/dialog/oauth"
    )
    META_GRAPH_URL = os.environ.get("META_GRAPH_URL", "https://graph.facebook.com/v21.0")

    # -- publishing (app/services/dispatcher.py, publishing.py) --------------------------------
    # How often `relais cron` runs the dispatcher (whole seconds: rq's cron counts in seconds).
    PUBLISH_DISPATCH_INTERVAL_SECONDS = int(
        os.environ.get("PUBLISH_DISPATCH_INTERVAL_SECONDS", "1")
    )
    # The dispatcher claims deliveries due within this many seconds, and their jobs wait out
    # the rest: a post due at 9:00:00 goes out at 9:00:00, not at the next tick after it.
    PUBLISH_LOOKAHEAD_SECONDS = float(os.environ.get("PUBLISH_LOOKAHEAD_SECONDS", "1.5"))
    # The most deliveries one dispatcher run claims (the next run, a second later, goes on).
    PUBLISH_CLAIM_BATCH = int(os.environ.get("PUBLISH_CLAIM_BATCH", "500"))
    # How long a claimed or publishing delivery belongs to its job before the dispatcher looks
    # at the job in Redis: a job lost (Redis flushed) is enqueued again, one whose worker died
    # mid-publish is reconciled; a job still waiting or running keeps it for as long again.
    PUBLISH_LEASE_SECONDS = int(os.environ.get("PUBLISH_LEASE_SECONDS", "30"))
    # Transient failures (429, 5xx, connection errors before sending) are retried after
    # PUBLISH_RETRY_BASE_SECONDS, doubling each time up to PUBLISH_RETRY_MAX_SECONDS, with
    # jitter, never sooner than the network's Retry-After; the delivery fails after
    # PUBLISH_MAX_ATTEMPTS attempts.
    PUBLISH_MAX_ATTEMPTS = int(os.environ.get("PUBLISH_MAX_ATTEMPTS", "10"))
    PUBLISH_RETRY_BASE_SECONDS = float(os.environ.get("PUBLISH_RETRY_BASE_SECONDS", "10"))
    PUBLISH_RETRY_MAX_SECONDS = float(os.environ.get("PUBLISH_RETRY_MAX_SECONDS", "1800"))
    # A network with no idempotency key (X, LinkedIn, Facebook, Instagram) may still be making
    # a post it did not answer about: the reconciler asks it this many seconds later.
    PUBLISH_RECONCILE_DELAY_SECONDS = int(os.environ.get("PUBLISH_RECONCILE_DELAY_SECONDS", "15"))

    # -- operations (app/logs.py, app/metrics.py) ---------------------------------------------
    # Empty: `json` with RELAIS_ENV=production (one object per line, for log collectors), else
    # `text` (readable in a terminal under `make run`).
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "")
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
    # Scrapers present it as `Authorization: Bearer …` to read /metrics. Unset, /metrics answers
    # only clients on this machine (loopback), and not at all in production.
    METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
    # An offboarded brand's accounts are revoked at their networks by a job; seconds before
    # each retry after a failure (about a day in all), after which the attempt is given up and
    # recorded in the agency's audit trail.
    ACCOUNT_REVOCATION_RETRY_INTERVALS = [
        int(s)
        for s in os.environ.get(
            "ACCOUNT_REVOCATION_RETRY_INTERVALS", "60,300,1800,7200,21600,43200"
        ).split(",")
        if s.strip()
    ]
    # Media files no database row points to (an upload whose process died between storing the
    # file and committing its row, a deletion the store did not take) are removed by a periodic
    # sweep once older than this; younger ones may belong to an upload still in progress.
    MEDIA_ORPHAN_GRACE_SECONDS = int(os.environ.get("MEDIA_ORPHAN_GRACE_SECONDS", "3600"))
    # How many stored files one sweep looks at; the next run carries on from there.
    MEDIA_ORPHAN_SWEEP_LIMIT = int(os.environ.get("MEDIA_ORPHAN_SWEEP_LIMIT", "5000"))

    @property
    def is_production(self) -> bool:
        return self.ENV == "production"


class TestConfig(Config):
    ENV = "test"
    TESTING = True
    SECRET_KEY = "test-secret-key-not-for-production-0123456789"
    DATABASE_URL = normalize_database_url(os.environ.get("TEST_DATABASE_URL", "sqlite://"))
    MIGRATION_DATABASE_URL = DATABASE_URL
    REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
    # Cheap hashes keep the suite fast; production keeps the real cost.
    PASSWORD_HASH_TIME_COST = 1
    PASSWORD_HASH_MEMORY_COST = 1024
    LOGIN_MAX_FAILURES_PER_IP = 1000
    # A per-process temp dir (made on first upload); the suite's fixtures point it at their own.
    MEDIA_ROOT = os.path.join(tempfile.gettempdir(), f"relais-test-media-{os.getpid()}")
    # Mail is written to files, never sent (a test that wants SMTP starts its own server).
    SMTP_URL = ""
    MAIL_DIR = os.path.join(tempfile.gettempdir(), f"relais-test-mail-{os.getpid()}")
    # Fixed keys so encrypted test data is reproducible; never use these anywhere else.
    CREDENTIALS_ENCRYPTION_KEYS = [
        "dGVzdC1jcmVkZW50aWFscy1rZXktMC0wMTIzNDU2Nzg=",
    ]
    # Tests talk to fakes and a real PDS on 127.0.0.1, and to nothing else.
    ALLOW_PRIVATE_NETWORK_TARGETS = True
    NETWORK_TARGETS_LOOPBACK_ONLY = True
    NETWORK_HTTP_TIMEOUT_SECONDS = 10.0
    LINKEDIN_CLIENT_ID = "test-linkedin-client"
    LINKEDIN_CLIENT_SECRET = "test-linkedin-secret"
    X_CLIENT_ID = "test-x-client"
    X_CLIENT_SECRET = "test-x-secret"
    META_APP_ID = "test-meta-app"
    META_APP_SECRET = "test-meta-secret"


def config_as_dict(config: object) -> dict:
    return {
        key: getattr(config, key)
        for key in dir(config)
        if key.isupper() and not key.startswith("_")
    }
