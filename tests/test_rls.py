"""PostgreSQL Row-Level Security: forced on every tenant table, and enough on its own.

The view-level filter (`app.tenancy.scoped_select`) is bypassed on purpose here: plain
`select(Model)` through the app's own session, scoped to agency B, must return no row of
agency A, and a row written with A's `agency_id` while scoped to B must be refused.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, make_url, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from app import tenancy
from app.extensions import db
from app.models import Agency, Brand
from tests.factories import generic_row
from tests.tenant_data import tenant_models
from tests.world import build_world

pytestmark = pytest.mark.usefixtures("postgres_only")


def _agency_of(row) -> str:
    return row.id if isinstance(row, Agency) else row.agency_id


@pytest.fixture
def owner_conn(database):
    engine = create_engine(database.owner_url, poolclass=NullPool)
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def test_every_table_with_agency_id_has_forced_rls_and_a_policy(owner_conn):
    tables = (
        owner_conn.execute(
            text(
                "SELECT table_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND column_name = 'agency_id'"
            )
        )
        .scalars()
        .all()
    )
    assert len(tables) >= 8, tables
    problems = []
    for table in [*tables, "agencies"]:  # `agencies` is keyed by its own id
        secured, forced = owner_conn.execute(
            text(
                "SELECT relrowsecurity, relforcerowsecurity FROM pg_class "
                "WHERE oid = to_regclass(:t)"
            ),
            {"t": table},
        ).one()
        policies = owner_conn.execute(
            text(
                "SELECT qual, with_check FROM pg_policies "
                "WHERE schemaname = current_schema() AND tablename = :t"
            ),
            {"t": table},
        ).all()
        if not secured:
            problems.append(f"{table}: row-level security is not enabled")
        if not forced:
            problems.append(f"{table}: row-level security not forced (the owner escapes it)")
        if not policies:
            problems.append(f"{table}: no policy (add tenant_policy_sql('{table}') to a migration)")
        elif not any("app.agency_id" in (qual or "") and check for qual, check in policies):
            problems.append(f"{table}: no policy filters reads and writes on app.agency_id")
    assert not problems, "\n".join(problems)


def test_the_app_connects_as_a_role_rls_applies_to(app, owner_conn):
    runtime = make_url(app.config["DATABASE_URL"]).username
    with app.app_context():
        assert db.session.scalar(text("SELECT current_user")) == runtime
    superuser, bypass = owner_conn.execute(
        text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :r"), {"r": runtime}
    ).one()
    assert not superuser, f"{runtime} is a superuser: RLS does not apply to it"
    assert not bypass, f"{runtime} has BYPASSRLS"
    owned = (
        owner_conn.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND pg_has_role(:r, tableowner, 'MEMBER')"
            ),
            {"r": runtime},
        )
        .scalars()
        .all()
    )
    assert not owned, f"{runtime} owns (or is a member of the owner of) {owned}"


@pytest.fixture
def two_agencies(client, make_agency, invite_user):
    a = build_world(client, make_agency, invite_user, "Alpha")
    b = build_world(client, make_agency, invite_user, "Bravo")
    # A row of A in every tenant table, even those no route fills yet.
    for world in (a, b):
        for model in tenant_models():
            with world.rows(world.brands[0]) as made:
                if made.session.scalar(select(model).limit(1)) is None:
                    made.generic(model, user_id=world.actors["owner"].user_id)
    return a, b


def test_rls_alone_hides_other_agencies_rows(app, two_agencies):
    a, b = two_agencies
    models = tenant_models()
    with app.app_context():
        tenancy.enter_agency(a.agency_id)
        seen_by_a = {m.__name__: len(db.session.scalars(select(m)).all()) for m in models}
        db.session.rollback()
        tenancy.enter_agency(b.agency_id)
        leaks = {}
        for model in models:
            # Deliberately unscoped: the view-level filter is not there, only RLS is.
            rows = db.session.scalars(select(model)).all()
            foreign = [r for r in rows if _agency_of(r) != b.agency_id]
            if foreign:
                leaks[model.__name__] = len(foreign)
    empty = [name for name, count in seen_by_a.items() if count == 0]
    assert not empty, f"the test saw no row of A in {empty}: it proves nothing there"
    assert not leaks, f"scoped to B, plain select() returned other agencies' rows: {leaks}"


def test_rls_refuses_writing_a_row_into_another_agency(app, two_agencies):
    a, b = two_agencies
    accepted = []
    for model in tenant_models():
        with app.app_context():
            tenancy.enter_agency(b.agency_id)
            try:
                generic_row(
                    db.session,
                    model,
                    agency_id=a.agency_id,
                    brand_id=a.brands[0],
                    user_id=a.actors["owner"].user_id,
                )
                db.session.commit()
                accepted.append(model.__name__)
            except DBAPIError as exc:
                assert "row-level security" in str(exc.orig), exc
                db.session.rollback()
    assert not accepted, f"scoped to B, rows with A's agency_id were written to {accepted}"


def test_rls_ignores_updates_of_other_agencies_rows_and_refuses_moving_a_row(app, two_agencies):
    a, b = two_agencies
    with app.app_context():
        tenancy.enter_agency(b.agency_id)
        touched = db.session.execute(
            update(Brand).where(Brand.id == a.brands[0]).values(name="taken over")
        )
        assert touched.rowcount == 0
        db.session.commit()
        with pytest.raises(DBAPIError, match="row-level security"):
            db.session.execute(
                update(Brand).where(Brand.id == b.brands[0]).values(agency_id=a.agency_id)
            )
        db.session.rollback()
