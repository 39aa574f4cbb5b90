"""Re-encrypting every secret stored at rest with the newest key of
CREDENTIALS_ENCRYPTION_KEYS: `relais accounts rotate-keys` (app/commands.py).

Put a new key first, deploy, run the rotation, then drop the old key. It walks each table
holding an encrypted column in batches, across agencies (`system_scope`).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from app import tenancy
from app.extensions import db
from app.models import (
    AccountRevocation,
    MastodonApp,
    OAuthState,
    OutboundEmail,
    SocialAccount,
    WebhookEndpoint,
)
from app.security import crypto

log = logging.getLogger(__name__)


@dataclass
class Rotation:
    """What `relais accounts rotate-keys` did: counts per table, and the rows it could not read."""

    counts: dict[str, int]
    unreadable: list[tuple[str, str]]  # (table, row id)


@tenancy.system_lookup(tenancy.SystemLookup.SWEEP)
def rotate_encryption_keys(batch: int = 200) -> Rotation:
    """Re-encrypt every stored secret with the newest key (run after adding a key in front).

    A row no configured key decrypts is reported and skipped, never fatal: the run re-encrypts
    every row it can, so dropping one wrong key later costs only the rows it names.
    """
    cipher = crypto.cipher()
    counts: Counter[str] = Counter()
    unreadable: list[tuple[str, str]] = []
    targets = (
        (SocialAccount, SocialAccount.credentials_encrypted, "social_accounts"),
        (OAuthState, OAuthState.verifier_encrypted, "oauth_states"),
        (MastodonApp, MastodonApp.client_secret_encrypted, "mastodon_apps"),
        # Messages not sent yet (the context of a sent one is erased).
        (OutboundEmail, OutboundEmail.context_encrypted, "outbound_emails"),
        # Offboarded brands' accounts waiting for their revocation at the network.
        (AccountRevocation, AccountRevocation.credentials_encrypted, "account_revocations"),
        # Webhook signing secrets (encrypted, not hashed: they sign every message).
        (WebhookEndpoint, WebhookEndpoint.secrets_encrypted, "webhook_endpoints"),
    )
    for model, column, name in targets:
        last_id: Any = None
        while True:
            with tenancy.system_scope():
                stmt = select(model).where(column.is_not(None)).order_by(model.id).limit(batch)
                if last_id is not None:
                    stmt = stmt.where(model.id > last_id)
                rows = list(db.session.scalars(stmt))
                for row in rows:
                    token = getattr(row, column.key)
                    if cipher.is_current(token):
                        counts[f"{name}_current"] += 1
                        continue
                    try:
                        setattr(row, column.key, cipher.rotate(token))
                    except crypto.CredentialsUnreadable:
                        log.error("%s %s: no configured key decrypts it; left as is", name, row.id)
                        unreadable.append((name, str(row.id)))
                        continue
                    counts[name] += 1
                db.session.commit()
            if len(rows) < batch:
                break
            last_id = rows[-1].id
    return Rotation(dict(counts), unreadable)
