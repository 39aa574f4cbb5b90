"""The caller's agency: its own settings (creating one is sign-up, app/services/signup.py)."""

from __future__ import annotations

from typing import Any

from app import tenancy
from app.extensions import db
from app.models import Agency
from app.services import audit


def update_agency(changes: dict[str, Any], *, actor: audit.Actor) -> Agency:
    """Change the caller's agency (its name) and record it in the trail."""
    agency = tenancy.current_agency()
    for field, value in changes.items():
        setattr(agency, field, value)
    audit.record(
        "agency.updated",
        actor=actor,
        agency_id=agency.id,
        target_type="agency",
        target_id=agency.id,
        data={"fields": sorted(changes)},
    )
    db.session.commit()
    return agency
