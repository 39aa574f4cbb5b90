from __future__ import annotations

from flask.views import MethodView

from app import tenancy
from app.api.http import Blueprint, paginate
from app.auth import permissions
from app.auth.principal import current_principal
from app.models import AuditEvent
from app.schemas.agency import AuditEventPageSchema, AuditQueryArgsSchema

blp = Blueprint("audit", __name__, url_prefix="/v1/audit-events", description="The audit trail")


@blp.route("")
class AuditEvents(MethodView):
    @blp.doc(operationId="listAuditEvents")
    @blp.arguments(AuditQueryArgsSchema, location="query")
    @blp.response(200, AuditEventPageSchema)
    def get(self, args):
        """The agency's audit trail

        Owners and admins, signed in as a person, page through who did what, oldest first,
        optionally for one brand or one action. API keys and members get a 403: the trail holds
        people data (e-mails, the address of each request).
        """
        permissions.require(current_principal(), "audit.read")
        stmt = tenancy.scoped_select(AuditEvent)
        if args.get("brand_id"):
            stmt = stmt.where(AuditEvent.brand_id == args["brand_id"])
        if args.get("action"):
            stmt = stmt.where(AuditEvent.action == args["action"])
        return paginate(stmt, AuditEvent.id, args)
