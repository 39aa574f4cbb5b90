"""Our OAuth app on each instance of a network where every server is its own provider
(Mastodon: POST /api/v1/apps), registered the first time someone connects an account there and
reused by every brand after that.

The client secret is encrypted at rest like account credentials. Registrations are not tenant
data (`mastodon_apps` has no agency): one per instance, redirect URI and scopes.
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from app.extensions import db
from app.models import MastodonApp
from app.networks.base import Connector
from app.security import crypto


def client_of(connector: Connector, instance_url: str, redirect_uri: str) -> dict[str, str]:
    """Our `client_id` and `client_secret` on this instance, as `AuthorizationRequest.extra`
    takes them. Registers (and commits) on first use; a refusal is the connector's
    `NetworkError`."""
    scopes = connector.app_scopes()
    stmt = select(MastodonApp).where(
        MastodonApp.instance_url == instance_url,
        MastodonApp.redirect_uri == redirect_uri,
        MastodonApp.scopes == scopes,
    )
    cached = db.session.scalars(stmt).first()
    if cached is None:
        client_id, client_secret = connector.register_app(instance_url, redirect_uri, scopes)
        cached = MastodonApp(
            instance_url=instance_url,
            redirect_uri=redirect_uri,
            scopes=scopes,
            client_id=client_id,
            client_secret_encrypted=crypto.encrypt({"client_secret": client_secret}),
        )
        db.session.add(cached)
        try:
            db.session.commit()
        except sa_exc.IntegrityError:
            # Another request registered at the same time: use theirs.
            db.session.rollback()
            cached = db.session.scalars(stmt).one()
    secret = crypto.decrypt(cached.client_secret_encrypted)["client_secret"]
    return {"client_id": cached.client_id, "client_secret": secret}
