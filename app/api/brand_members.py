from __future__ import annotations

from flask.views import MethodView

from app import tenancy
from app.api.http import Blueprint, brand_route, paginate
from app.api.idempotency import idempotent
from app.auth.principal import current_actor
from app.models import BrandMembership
from app.schemas.brands import (
    BrandMemberCreateSchema,
    BrandMemberPageSchema,
    BrandMemberSchema,
    BrandMemberUpdateSchema,
)
from app.schemas.common import PageArgsSchema
from app.services import members

blp = Blueprint(
    "brand_members",
    __name__,
    url_prefix="/v1/brands/<id(brd):brand_id>/members",
    description="Who works on a brand, and in which role",
)


def _view(membership: BrandMembership) -> dict:
    user = members.users_by_id({membership.user_id})[membership.user_id]
    return _view_with(membership, user)


def _view_with(membership: BrandMembership, user) -> dict:
    return {
        "id": membership.id,
        "brand_id": membership.brand_id,
        "user_id": membership.user_id,
        "role": membership.role,
        "email": user.email,
        "name": user.name,
        "created_at": membership.created_at,
    }


@blp.route("")
class BrandMembers(MethodView):
    @blp.doc(operationId="listBrandMembers")
    @brand_route("brand.members.read")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, BrandMemberPageSchema)
    def get(self, args, brand):
        """List a brand's members

        Agency owners and admins, and the brand's managers, signed in as a person (API keys get a
        403: people data is for people), page through the people with a role on the brand, with
        their e-mail and name. A brand you cannot reach is a 404.
        """
        stmt = tenancy.scoped_select(BrandMembership).where(BrandMembership.brand_id == brand.id)
        page = paginate(stmt, BrandMembership.id, args)
        users = members.users_by_id({m.user_id for m in page["items"]})
        page["items"] = [_view_with(m, users[m.user_id]) for m in page["items"]]
        return page

    @blp.doc(operationId="addBrandMember")
    @brand_route("brand.members.manage")
    @idempotent
    @blp.arguments(BrandMemberCreateSchema)
    @blp.response(201, BrandMemberSchema)
    @blp.alt_response(409, response="CONFLICT", description="Already a member of this brand")
    def post(self, data, brand):
        """Give an agency member a role on this brand

        Agency owners and admins, and the brand's managers. The user must already be on the agency's
        staff (404 otherwise); clients and other outsiders join through an invitation instead. A
        user who already has a role on the brand is a 409.
        """
        return _view(
            members.add_brand_member(brand, data["user_id"], data["role"], actor=current_actor())
        )


@blp.route("/<id(bmb):membership_id>")
class BrandMemberById(MethodView):
    @blp.doc(operationId="getBrandMember")
    @brand_route("brand.members.read", load=BrandMembership)
    @blp.response(200, BrandMemberSchema)
    def get(self, brand, membership):
        """One member of a brand

        Agency owners and admins, and the brand's managers, signed in as a person (API keys get a
        403). A membership of another brand, or one that was removed, is a 404.
        """
        return _view(membership)

    @blp.doc(operationId="updateBrandMember")
    @brand_route("brand.members.manage", load=BrandMembership)
    @blp.arguments(BrandMemberUpdateSchema)
    @blp.response(200, BrandMemberSchema)
    def patch(self, data, brand, membership):
        """Change someone's role on this brand

        Agency owners and admins, and the brand's managers, set the role to manager, editor,
        approver or client.
        """
        return _view(members.change_brand_role(membership, data["role"], actor=current_actor()))

    @blp.doc(operationId="removeBrandMember")
    @brand_route("brand.members.manage", load=BrandMembership)
    @blp.response(204)
    def delete(self, brand, membership):
        """Take someone off this brand

        Agency owners and admins, and the brand's managers. The person keeps their agency role, if
        any; a membership already removed is a 404.
        """
        members.remove_brand_member(membership, actor=current_actor())
