from __future__ import annotations

from flask.views import MethodView

from app import tenancy
from app.api.http import Blueprint, paginate, public
from app.api.idempotency import idempotent
from app.auth import permissions
from app.auth.principal import current_actor, current_principal
from app.models import Invitation
from app.models.base import utcnow
from app.schemas.agency import (
    InvitationAcceptSchema,
    InvitationCreateSchema,
    InvitationPageSchema,
    InvitationPreviewRequestSchema,
    InvitationPreviewSchema,
    InvitationSchema,
)
from app.schemas.common import PageArgsSchema
from app.schemas.identity import TokenPairSchema
from app.services import invitations

blp = Blueprint(
    "invitations",
    __name__,
    url_prefix="/v1/invitations",
    description="Invite staff to the agency and clients to a brand",
)


def _status(invitation: Invitation) -> str:
    if invitation.accepted_at:
        return "accepted"
    if invitation.revoked_at:
        return "revoked"
    return "expired" if invitation.expires_at <= utcnow() else "pending"


def _with_status(invitation: Invitation) -> dict:
    return {
        "id": invitation.id,
        "email": invitation.email,
        "agency_role": invitation.agency_role,
        "brand_id": invitation.brand_id,
        "brand_role": invitation.brand_role,
        "status": _status(invitation),
        "expires_at": invitation.expires_at,
        "created_at": invitation.created_at,
    }


@blp.route("")
class Invitations(MethodView):
    @blp.doc(operationId="listInvitations")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, InvitationPageSchema)
    def get(self, args):
        """List invitations

        Agency owners and admins see every invitation of the agency; brand managers see those to
        their brands; anyone else gets a 403. Each shows its status (pending, accepted, revoked,
        expired).
        """
        page = paginate(invitations.list_statement(current_principal()), Invitation.id, args)
        page["items"] = [_with_status(i) for i in page["items"]]
        return page

    @blp.doc(operationId="createInvitation")
    @idempotent
    @blp.arguments(InvitationCreateSchema)
    @blp.response(201, InvitationSchema)
    def post(self, data):
        """Invite someone

        To the agency: give `agency_role` (agency owners and admins). To one brand, a client say:
        give `brand_id` and `brand_role` (also the brand's managers). The invitation's link is
        mailed to the address, and only there: whoever accepts must control the address. To
        send a new link, revoke the invitation and invite again.
        """
        principal = current_principal()
        brand = None
        if "brand_id" in data:
            brand = tenancy.get_brand_or_404(data["brand_id"])
            permissions.require(principal, "brand.invite", brand.id)
        else:
            permissions.require(principal, "agency.invite")
        invitation = invitations.create_invitation(
            principal.agency_id,
            email=data["email"],
            agency_role=None if brand else data.get("agency_role"),
            brand=brand,
            brand_role=data.get("brand_role"),
            invited_by=principal.user_id,
            inviter_role=principal.agency_role,
            actor=current_actor(),
        )
        return _with_status(invitation)


@blp.route("/<id(inv):invitation_id>")
class InvitationById(MethodView):
    @blp.doc(operationId="getInvitation")
    @blp.response(200, InvitationSchema)
    def get(self, invitation_id):
        """One invitation

        Agency owners and admins, or the managers of the invitation's brand. The token is never
        shown again; an invitation of another agency is a 404.
        """
        invitation = tenancy.get_or_404(Invitation, invitation_id, what="invitation")
        _require_manage(invitation)
        return _with_status(invitation)

    @blp.doc(operationId="revokeInvitation")
    @blp.response(204)
    def delete(self, invitation_id):
        """Revoke a pending invitation

        Agency owners and admins, or the managers of the invitation's brand. The token stops
        working; an invitation already accepted cannot be revoked (409).
        """
        invitation = tenancy.get_or_404(Invitation, invitation_id, what="invitation")
        _require_manage(invitation)
        invitations.revoke_invitation(invitation, actor=current_actor())


def _require_manage(invitation: Invitation) -> None:
    principal = current_principal()
    if invitation.brand_id:
        permissions.require(principal, "brand.invite", invitation.brand_id)
    else:
        permissions.require(principal, "agency.invite")


@blp.route("/accept")
class AcceptInvitation(MethodView):
    @blp.doc(operationId="acceptInvitation")
    @public
    @blp.arguments(InvitationAcceptSchema)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(404, response="NOT_FOUND", description="Unknown or revoked invitation")
    @blp.alt_response(409, response="CONFLICT", description="Already accepted, or expired")
    @blp.alt_response(401, response="UNAUTHORIZED", description="Wrong password for the account")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS", description="Too many wrong passwords")
    def post(self, data):
        """Accept an invitation

        Public (the token from the invitation's e-mail is the credential, and proves the
        address). A new invitee sets a name and a password; someone who already has an account
        gives its password. Returns a signed-in token pair for
        the inviting agency; an unknown or revoked token is a 404, a used or expired one a 409.
        """
        return invitations.accept_invitation(
            data["token"],
            name=data.get("name"),
            password=data["password"],
            actor=current_actor(),
        )


@blp.route("/preview")
class PreviewInvitation(MethodView):
    @public
    @blp.doc(operationId="previewInvitation")
    @blp.arguments(InvitationPreviewRequestSchema)
    @blp.response(200, InvitationPreviewSchema)
    @blp.alt_response(404, response="NOT_FOUND", description="Unknown or revoked invitation")
    @blp.alt_response(409, response="CONFLICT", description="Already accepted, or expired")
    def post(self, data):
        """What an invitation's link is for, before accepting it

        Public (the token from the invitation's e-mail is the credential). For the front end's
        acceptance page: who invites, to what, and whether the address has an account already
        (then accept with its password) or not (choose a name and a password). Changes nothing.
        """
        view = invitations.describe(data["token"])
        invitation = view.invitation
        return {
            "email": invitation.email,
            "agency_name": view.agency_name,
            "brand_name": view.brand_name,
            "agency_role": invitation.agency_role,
            "brand_role": invitation.brand_role,
            "account_exists": view.account_exists,
            "expires_at": invitation.expires_at,
        }
