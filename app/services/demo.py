"""Demo data for newcomers (`relais demo`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app import tenancy
from app.auth.passwords import hash_password
from app.extensions import db
from app.models import Brand, User
from app.services import audit, brands, identity, signup

EMAIL = "demo@relais.test"
PASSWORD = "demo-password-123"
BRANDS = [("Boulangerie Soleil", "Europe/Paris"), ("Brooklyn Bikes", "America/New_York")]


@dataclass
class Seeded:
    agency_id: str
    brands: list[tuple[str, str]]
    access_token: str


def seed() -> Seeded:
    """Create the demo agency once; on later runs just sign in again."""
    existing = db.session.scalar(select(User).where(User.email == EMAIL))
    if existing is None:
        # Seeded straight, without the mailed confirmation: the address is a made-up one.
        owner = User(email=EMAIL, name="Demo Owner", password_hash=hash_password(PASSWORD))
        db.session.add(owner)
        db.session.flush()
        agency_id = signup.create_agency("Demo Agency", owner, actor=audit.SYSTEM).id
        db.session.commit()
        tenancy.enter_agency(agency_id)
        for name, tz in BRANDS:
            brands.create_brand(agency_id, {"name": name, "timezone": tz}, actor=audit.SYSTEM)
    tokens = identity.login(email=EMAIL, password=PASSWORD, agency_id=None, actor=audit.SYSTEM)
    tenancy.enter_agency(tokens.agency_id)
    rows = db.session.execute(tenancy.scoped_select(Brand, Brand.id, Brand.name).order_by(Brand.id))
    return Seeded(tokens.agency_id, [(r.id, r.name) for r in rows], tokens.access_token)
