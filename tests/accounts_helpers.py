"""Helpers shared by the social-account tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from app.extensions import db


def raw_account_row(app: Any, account_id: str) -> dict[str, Any]:
    """The stored row, read past the API (and its tenant scope) as the tests' owner would."""
    from app import tenancy

    with app.app_context(), tenancy.system_scope():
        row = (
            db.session.execute(
                text("SELECT * FROM social_accounts WHERE id = :id"), {"id": account_id}
            )
            .mappings()
            .one()
        )
        result = dict(row)
        db.session.rollback()
    return result


def set_account_columns(app: Any, account_id: str, **values: Any) -> None:
    from app import tenancy
    from app.models import SocialAccount

    with app.app_context(), tenancy.system_scope():
        account = db.session.get(SocialAccount, account_id)
        for name, value in values.items():
            setattr(account, name, value)
        db.session.commit()
