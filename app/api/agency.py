from __future__ import annotations

from flask.views import MethodView

from app import tenancy
from app.api.http import Blueprint, paginate
from app.auth import permissions
from app.auth.principal import current_actor, current_principal
from app.models import AgencyMembership
from app.schemas.agency import (
    AgencyMemberPageSchema,
    AgencyMemberSchema,
    AgencyMemberUpdateSchema,
)
from app.schemas.common import PageArgsSchema
from app.schemas.identity import AgencySchema, AgencyUpdateSchema
from app.services import agencies, members

blp = Blueprint(
    "agency", __name__, url_prefix="/v1/agency", description="Your agency and its staff"
)


def _member_view(membership: AgencyMembership, users: dict) -> dict:
    user = users[membership.user_id]
    return {
        "id": membership.id,
        "user_id": membership.user_id,
        "email": user.email,
        "name": user.name,
        "role": membership.role,
        "created_at": membership.created_at,
    }


@blp.route("")
class AgencyResource(MethodView):
    @blp.doc(operationId="getAgency")
    @blp.response(200, AgencySchema)
    def get(self):
        """Your agency

        Any member of the agency, or an API key, reads its name, plan and billing status.
        """
        permissions.require(current_principal(), "agency.read")
        return tenancy.current_agency()

    @blp.doc(operationId="updateAgency")
    @blp.arguments(AgencyUpdateSchema)
    @blp.response(200, AgencySchema)
    def patch(self, changes):
        """Rename your agency

        Owners only, signed in as a person (API keys cannot). Send only the fields to change; the
        change is written to the audit trail.
        """
        permissions.require(current_principal(), "agency.update")
        return agencies.update_agency(changes, actor=current_actor())


@blp.route("/members")
class AgencyMembers(MethodView):
    @blp.doc(operationId="listAgencyMembers")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, AgencyMemberPageSchema)
    def get(self, args):
        """List the agency's staff

        Owners and admins, signed in as a person (API keys get a 403: people data is for people),
        page through everyone with an agency role, with their e-mail and name, ordered by when they
        joined.
        """
        permissions.require(current_principal(), "agency.members.read")
        page = paginate(tenancy.scoped_select(AgencyMembership), AgencyMembership.id, args)
        users = members.users_by_id({m.user_id for m in page["items"]})
        page["items"] = [_member_view(m, users) for m in page["items"]]
        return page


@blp.route("/members/<id(amb):membership_id>")
class AgencyMemberById(MethodView):
    @blp.doc(operationId="getAgencyMember")
    @blp.response(200, AgencyMemberSchema)
    def get(self, membership_id):
        """One staff member

        Owners and admins, signed in as a person (API keys get a 403), read one agency membership.
        A membership of another agency, or one that was removed, is a 404.
        """
        membership = tenancy.get_or_404(AgencyMembership, membership_id, what="member")
        permissions.require(current_principal(), "agency.members.read")
        return _member_view(membership, members.users_by_id({membership.user_id}))

    @blp.doc(operationId="updateAgencyMember")
    @blp.arguments(AgencyMemberUpdateSchema)
    @blp.response(200, AgencyMemberSchema)
    @blp.alt_response(409, response="CONFLICT", description="The last owner cannot step down")
    def patch(self, data, membership_id):
        """Change a staff member's agency role

        Owners and admins, signed in as a person. Only an owner grants or takes away the owner role
        (403 otherwise), and the last owner cannot step down (409).
        """
        # Load first: another agency's member is a 404 whatever the caller's role.
        membership = tenancy.get_or_404(AgencyMembership, membership_id, what="member")
        principal = current_principal()
        permissions.require(principal, "agency.members.manage")
        members.change_agency_role(
            membership, data["role"], actor_role=principal.agency_role, actor=current_actor()
        )
        return _member_view(membership, members.users_by_id({membership.user_id}))

    @blp.doc(operationId="removeAgencyMember")
    @blp.response(204)
    @blp.alt_response(409, response="CONFLICT", description="The last owner cannot be removed")
    def delete(self, membership_id):
        """Remove someone from the agency

        Owners and admins, signed in as a person. The person also loses every role on the agency's
        brands. Only an owner removes an owner (403), and the last owner stays (409).
        """
        # Load first: another agency's member is a 404 whatever the caller's role.
        membership = tenancy.get_or_404(AgencyMembership, membership_id, what="member")
        principal = current_principal()
        permissions.require(principal, "agency.members.manage")
        members.remove_agency_member(
            membership, actor_role=principal.agency_role, actor=current_actor()
        )
