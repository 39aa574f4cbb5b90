from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from app import tenancy
from app.api.http import (
    ETAG_HEADER_DOC,
    IF_MATCH_PARAMETER,
    LINK_HEADER_DOC,
    check_if_match,
    idempotent,
    paginate,
    send_etag,
)
from app.auth import permissions
from app.auth.principal import current_principal
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
    @blp.arguments(BrandQueryArgsSchema, location="query")
    @blp.response(200, BrandPageSchema, headers=LINK_HEADER_DOC)
    def get(self, args):
        """List the brands you can reach"""
        stmt = tenancy.scoped_select(Brand)
        if args.get("status"):
            stmt = stmt.where(Brand.status == args["status"])
        return paginate(stmt, Brand.id, args)

    @idempotent
    @blp.arguments(BrandCreateSchema)
    @blp.response(201, BrandSchema, headers=ETAG_HEADER_DOC)
    @blp.alt_response(409, response="CONFLICT", description="The slug is taken in this agency")
    def post(self, data):
        """Create a brand"""
        principal = current_principal()
        permissions.require(principal, "brand.create")
        brand = brands.create_brand(principal.agency_id, data)
        send_etag(brand)
        return brand


@blp.route("/<brand_id>")
class BrandById(MethodView):
    @blp.response(200, BrandSchema, headers=ETAG_HEADER_DOC)
    def get(self, brand_id):
        """One brand"""
        brand = tenancy.get_brand_or_404(brand_id)
        send_etag(brand)
        return brand

    @blp.doc(parameters=[IF_MATCH_PARAMETER])
    @blp.arguments(BrandUpdateSchema)
    @blp.response(200, BrandSchema, headers=ETAG_HEADER_DOC)
    @blp.alt_response(412, response="PRECONDITION_FAILED", description="If-Match is stale")
    @blp.alt_response(409, response="CONFLICT", description="The slug is taken in this agency")
    def patch(self, changes, brand_id):
        """Change a brand's settings

        Name, slug, IANA time zone, approval mode and report branding. Send the ETag you read
        as `If-Match` to be sure not to overwrite someone else's change.
        """
        brand = tenancy.get_brand_or_404(brand_id)
        permissions.require(current_principal(), "brand.update", brand.id)
        check_if_match(brand)
        brands.update_brand(brand, changes)
        send_etag(brand)
        return brand

    @blp.response(204)
    def delete(self, brand_id):
        """Offboard a brand: delete it and every row it owns

        Irreversible; export first if you need the data (`GET …/export`).
        """
        brand = tenancy.get_brand_or_404(brand_id)
        permissions.require(current_principal(), "brand.offboard", brand.id)
        brands.offboard(brand)


@blp.route("/<brand_id>/archive")
class BrandArchive(MethodView):
    @blp.response(200, BrandSchema, headers=ETAG_HEADER_DOC)
    def post(self, brand_id):
        """Archive a brand (keeps all its data)"""
        brand = tenancy.get_brand_or_404(brand_id)
        permissions.require(current_principal(), "brand.archive", brand.id)
        brands.set_archived(brand, True)
        send_etag(brand)
        return brand


@blp.route("/<brand_id>/unarchive")
class BrandUnarchive(MethodView):
    @blp.response(200, BrandSchema, headers=ETAG_HEADER_DOC)
    def post(self, brand_id):
        """Bring an archived brand back"""
        brand = tenancy.get_brand_or_404(brand_id)
        permissions.require(current_principal(), "brand.archive", brand.id)
        brands.set_archived(brand, False)
        send_etag(brand)
        return brand


@blp.route("/<brand_id>/export")
class BrandExport(MethodView):
    @blp.response(200, BrandExportSchema)
    def get(self, brand_id):
        """Export everything the brand owns, as JSON (credentials left out)"""
        brand = tenancy.get_brand_or_404(brand_id)
        permissions.require(current_principal(), "brand.export", brand.id)
        return brands.export(brand)
