"""People of an agency (staff roles) and of a brand (brand roles)."""

from __future__ import annotations

from sqlalchemy import func, select

from app import tenancy
from app.errors import Conflict, Forbidden, NotFound
from app.extensions import db
from app.models import AgencyMembership, AgencyRole, Brand, BrandMembership, User
from app.services import audit, identity


def _owner_count() -> int:
    return (
        db.session.scalar(
            tenancy.scoped_select(AgencyMembership, func.count(AgencyMembership.id)).where(
                AgencyMembership.role == AgencyRole.OWNER
            )
        )
        or 0
    )


def change_agency_role(
    membership: AgencyMembership, role: str, *, actor_role: AgencyRole | None, actor: audit.Actor
) -> AgencyMembership:
    if AgencyRole.OWNER in (role, membership.role) and actor_role != AgencyRole.OWNER:
        raise Forbidden("Only an owner can grant or take away the owner role.")
    if membership.role == AgencyRole.OWNER and role != AgencyRole.OWNER and _owner_count() <= 1:
        raise Conflict("The agency must keep at least one owner; make someone else owner first.")
    previous = membership.role
    membership.role = role
    audit.record(
        "agency.member_role_changed",
        actor=actor,
        agency_id=membership.agency_id,
        target_type="agency_membership",
        target_id=membership.id,
        data={"from": previous, "to": role, "user_id": membership.user_id},
    )
    db.session.commit()
    return membership


def remove_agency_member(
    membership: AgencyMembership, *, actor_role: AgencyRole | None, actor: audit.Actor
) -> None:
    if membership.role == AgencyRole.OWNER:
        if actor_role != AgencyRole.OWNER:
            raise Forbidden("Only an owner can remove an owner.")
        if _owner_count() <= 1:
            raise Conflict("The agency must keep at least one owner.")
    # Their brand roles in this agency go with them.
    for brand_membership in db.session.scalars(
        tenancy.scoped_select(BrandMembership).where(BrandMembership.user_id == membership.user_id)
    ):
        db.session.delete(brand_membership)
    db.session.delete(membership)
    # Their sessions in this agency end now, not when their access token expires, and stay
    # ended if they are ever invited back.
    identity.revoke_sessions(membership.user_id, agency_id=membership.agency_id)
    audit.record(
        "agency.member_removed",
        actor=actor,
        agency_id=membership.agency_id,
        target_type="agency_membership",
        target_id=membership.id,
        data={"user_id": membership.user_id},
    )
    db.session.commit()


def add_brand_member(
    brand: Brand, user_id: str, role: str, *, actor: audit.Actor
) -> BrandMembership:
    staff = db.session.scalar(
        tenancy.scoped_select(AgencyMembership).where(AgencyMembership.user_id == user_id)
    )
    if staff is None:
        # Not found among the agency's staff (who may not learn of other users): a 404.
        raise NotFound(
            "No member of the agency has this user id; invite the person instead.",
            errors={"user_id": ["Not a member of this agency."]},
        )
    exists = db.session.scalar(
        tenancy.scoped_select(BrandMembership, BrandMembership.id).where(
            BrandMembership.brand_id == brand.id, BrandMembership.user_id == user_id
        )
    )
    if exists:
        raise Conflict(
            "This user already has a role on this brand; change it instead.",
            errors={"user_id": ["Already a member of this brand."]},
        )
    membership = BrandMembership(
        agency_id=brand.agency_id, brand_id=brand.id, user_id=user_id, role=role
    )
    db.session.add(membership)
    db.session.flush()
    audit.record(
        "brand.member_added",
        actor=actor,
        agency_id=brand.agency_id,
        brand_id=brand.id,
        target_type="brand_membership",
        target_id=membership.id,
        data={"user_id": user_id, "role": role},
    )
    db.session.commit()
    return membership


def change_brand_role(
    membership: BrandMembership, role: str, *, actor: audit.Actor
) -> BrandMembership:
    previous = membership.role
    membership.role = role
    audit.record(
        "brand.member_role_changed",
        actor=actor,
        agency_id=membership.agency_id,
        brand_id=membership.brand_id,
        target_type="brand_membership",
        target_id=membership.id,
        data={"from": previous, "to": role, "user_id": membership.user_id},
    )
    db.session.commit()
    return membership


def remove_brand_member(membership: BrandMembership, *, actor: audit.Actor) -> None:
    db.session.delete(membership)
    db.session.flush()
    if not _has_a_place_in_the_agency(membership.user_id):
        # Their last place in the agency (a client's only brand, say): their sessions end.
        identity.revoke_sessions(membership.user_id, agency_id=membership.agency_id)
    audit.record(
        "brand.member_removed",
        actor=actor,
        agency_id=membership.agency_id,
        brand_id=membership.brand_id,
        target_type="brand_membership",
        target_id=membership.id,
        data={"user_id": membership.user_id},
    )
    db.session.commit()


def _has_a_place_in_the_agency(user_id: str) -> bool:
    """Whether the person keeps any role in the agency, on any brand. Over the whole agency: the
    caller (a brand manager, say) may not reach the person's other brands, yet they count; the
    answer is a yes or no, never rows."""
    whole_agency = tenancy.agency_wide()
    for model in (AgencyMembership, BrandMembership):
        found = db.session.scalar(
            tenancy.scoped_select(model, model.id, scope=whole_agency)
            .where(model.user_id == user_id)
            .limit(1)
        )
        if found is not None:
            return True
    return False


def users_by_id(user_ids: set[str]) -> dict[str, User]:
    if not user_ids:
        return {}
    return {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(user_ids)))}
