from __future__ import annotations

from collections.abc import Callable

from flask.views import MethodView

from app.api.http import (
    ETAG_HEADER_DOC,
    LINK_HEADER_DOC,
    Blueprint,
    brand_route,
    paginate_rows,
    send_etag,
)
from app.api.idempotency import idempotent
from app.api.views import operation, read_view, update_view
from app.auth import permissions
from app.auth.principal import current_actor, current_principal
from app.models import Brand
from app.schemas.brands import (
    BrandCreateSchema,
    BrandExportSchema,
    BrandPageSchema,
    BrandQueryArgsSchema,
    BrandSchema,
    BrandUpdateSchema,
)
from app.services import brands

blp = Blueprint("brands", __name__, url_prefix="/v1/brands", description="Brands (the tenants)")


@blp.route("")
class Brands(MethodView):
    @blp.doc(operationId="listBrands")
    @blp.arguments(BrandQueryArgsSchema, location="query")
    @blp.response(200, BrandPageSchema, headers=LINK_HEADER_DOC)
    def get(self, args):
        """List the brands you can reach

        Anyone signed in: agency owners and admins (and unrestricted API keys) see every brand of
        the agency, others only the brands they have a role on. Filter by `status`.
        """
        return paginate_rows(brands.list_statement(args), Brand.id, args, brands.list_items)

    @blp.doc(operationId="createBrand")
    @idempotent
    @blp.arguments(BrandCreateSchema)
    @blp.response(201, BrandSchema, headers=ETAG_HEADER_DOC)
    @blp.alt_response(409, response="CONFLICT", description="The slug is taken in this agency")
    def post(self, data):
        """Create a brand

        Agency owners and admins, and API keys not limited to some brands. The slug is made from the
        name unless given, and must be free in the agency (409).
        """
        principal = current_principal()
        permissions.require(principal, "brand.create")
        brand = brands.create_brand(principal.agency_id, data, actor=current_actor())
        return send_etag(brand)


@blp.route("/<id(brd):brand_id>")
class BrandById(MethodView):
    get = operation(
        read_view(blp, "brand.read", BrandSchema),
        "getBrand",
        """One brand

        Anyone with a role on the brand, and agency owners and admins. A brand of another agency, or
        one you have no role on, is a 404. The ETag is for `If-Match` on PATCH.
        """,
    )
    patch = operation(
        update_view(
            blp,
            "brand.update",
            BrandUpdateSchema,
            BrandSchema,
            brands.update_brand,
            conflict="The slug is taken in this agency",
        ),
        "updateBrand",
        """Change a brand's settings

        Agency owners and admins, and the brand's managers: name, slug, IANA time zone, approval
        mode and report branding. Send the ETag you read as `If-Match` so as not to overwrite
        someone else's change (412 if it is stale); a slug taken in the agency is a 409.
        """,
    )

    @blp.doc(operationId="deleteBrand")
    @brand_route("brand.offboard", if_match=True)
    @blp.response(204)
    def delete(self, brand):
        """Offboard a brand: delete it and every row it owns

        Agency owners and admins. Irreversible: the brand and everything it owns are deleted, and
        its address is a 404 from then on. Export first if you need the data (`GET …/export`).
        """
        brands.offboard(brand, actor=current_actor())


def _archiving(archived: bool) -> Callable:
    """The view that archives a brand, or brings it back."""

    @brand_route("brand.archive", if_match=True, etag=True)
    @blp.response(200, BrandSchema)
    def post(self, brand):
        return brands.set_archived(brand, archived, actor=current_actor())

    return post


@blp.route("/<id(brd):brand_id>/archive")
class BrandArchive(MethodView):
    post = operation(
        _archiving(True),
        "archiveBrand",
        """Archive a brand

        Agency owners and admins. The brand and all its data stay, readable; nothing is published
        for it until it is unarchived. Archiving an archived brand changes nothing.
        """,
    )


@blp.route("/<id(brd):brand_id>/unarchive")
class BrandUnarchive(MethodView):
    post = operation(
        _archiving(False),
        "unarchiveBrand",
        """Bring an archived brand back

        Agency owners and admins. The brand becomes active again, as it was when archived.
        """,
    )


@blp.route("/<id(brd):brand_id>/export")
class BrandExport(MethodView):
    @blp.doc(operationId="exportBrand")
    @brand_route("brand.export")
    @blp.response(200, BrandExportSchema)
    def get(self, brand):
        """Export everything the brand owns

        Agency owners and admins, and the brand's managers, signed in as a person, get every row
        the brand owns as JSON, table by table; credentials and other secrets are left out. API
        keys get a 403: the export holds people data (invitations, the brand's audit trail).
        """
        return brands.export(brand, actor=current_actor())
