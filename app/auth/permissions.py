"""Every permission rule of the API, in one table.

Agency owners and admins hold every permission on every brand of their agency. Other people act
on a brand through their role on that brand. API keys act as an admin, or as a manager of the
brands they are limited to; they never manage keys or people, and never read people data.
"""

from __future__ import annotations

from app.auth.principal import Principal
from app.errors import Forbidden
from app.models import AgencyRole, BrandRole

_STAFF = {BrandRole.MANAGER, BrandRole.EDITOR, BrandRole.APPROVER}
_EVERY_BRAND_ROLE = _STAFF | {BrandRole.CLIENT}

# Permissions on one brand: the brand roles that hold them.
BRAND_PERMISSIONS: dict[str, set[BrandRole]] = {
    "brand.read": _EVERY_BRAND_ROLE,
    "brand.update": {BrandRole.MANAGER},
    "brand.export": {BrandRole.MANAGER},
    "brand.archive": set(),
    "brand.offboard": set(),
    "brand.members.read": {BrandRole.MANAGER},
    "brand.members.manage": {BrandRole.MANAGER},
    "brand.invite": {BrandRole.MANAGER},
    "posts.read": _EVERY_BRAND_ROLE,
    "posts.write": {BrandRole.MANAGER, BrandRole.EDITOR},
    # Clients approve only at the client step of `internal_and_client`
    # (app/services/posts/review.py).
    "posts.approve": {BrandRole.APPROVER, BrandRole.MANAGER, BrandRole.CLIENT},
    # Clients see the media of the posts they approve; only staff who write posts change media.
    "media.read": _EVERY_BRAND_ROLE,
    "media.write": {BrandRole.MANAGER, BrandRole.EDITOR},
    "accounts.read": _STAFF,
    "accounts.manage": {BrandRole.MANAGER},
}

# Permissions on the agency as a whole: the agency roles that hold them.
AGENCY_PERMISSIONS: dict[str, set[AgencyRole]] = {
    "agency.read": {AgencyRole.OWNER, AgencyRole.ADMIN, AgencyRole.MEMBER},
    "agency.update": {AgencyRole.OWNER},
    "agency.members.read": {AgencyRole.OWNER, AgencyRole.ADMIN},
    "agency.members.manage": {AgencyRole.OWNER, AgencyRole.ADMIN},
    "agency.invite": {AgencyRole.OWNER, AgencyRole.ADMIN},
    "brand.create": {AgencyRole.OWNER, AgencyRole.ADMIN},
    "api_keys.manage": {AgencyRole.OWNER, AgencyRole.ADMIN},
    # Endpoints receive every brand's events: agency-wide roles only (unrestricted keys too,
    # so an integration can register its own endpoint).
    "webhooks.manage": {AgencyRole.OWNER, AgencyRole.ADMIN},
    "audit.read": {AgencyRole.OWNER, AgencyRole.ADMIN},
}

# Only people may do these, never a key: a leaked key must not mint keys or invite people, nor
# read who the people are. Every route that answers with people's e-mails, names or network
# addresses needs one of these: the staff and brand member lists (e-mail, name), the audit trail
# (e-mails in its data, the address of each request), the invitations (e-mails) and a brand's
# export (its invitations and audit trail). A key still reads the ids of the people who wrote or
# reviewed a post, which say nothing about them.
PEOPLE_ONLY = {
    "api_keys.manage",
    "agency.members.manage",
    "agency.members.read",
    "agency.invite",
    "agency.update",
    "audit.read",
    "brand.export",
    "brand.invite",
    "brand.members.manage",
    "brand.members.read",
}


# On one's own account: any person, whatever their role; never a key (it has no account).
PERSONAL_PERMISSIONS = {"me.password"}


def can(principal: Principal, permission: str, brand_id: str | None = None) -> bool:
    if permission in PEOPLE_ONLY and principal.kind != "user":
        return False
    if permission in PERSONAL_PERMISSIONS:
        return principal.kind == "user"
    if permission in AGENCY_PERMISSIONS:
        return principal.agency_role in AGENCY_PERMISSIONS[permission]
    if permission not in BRAND_PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    if principal.reaches_all_brands:
        return True
    role = principal.brand_roles.get(brand_id or "")
    return role is not None and role in BRAND_PERMISSIONS[permission]


def require(principal: Principal, permission: str, brand_id: str | None = None) -> None:
    if not can(principal, permission, brand_id):
        raise Forbidden(f"Your role does not allow '{permission}' here.")
