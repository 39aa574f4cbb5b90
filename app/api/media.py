from __future__ import annotations

from typing import Any

from flask import request, send_file
from flask.views import MethodView
from werkzeug.datastructures import CombinedMultiDict

from app.api.http import (
    ETAG_HEADER_DOC,
    LINK_HEADER_DOC,
    MULTIPART_FRAMING,
    Blueprint,
    JsonBodyParser,
    body_limit,
    brand_route,
    paginate,
    public,
    send_etag,
)
from app.api.idempotency import idempotent
from app.api.views import operation, read_view, update_view
from app.auth.principal import current_actor, current_principal
from app.models import Media
from app.schemas.media import (
    MediaPageSchema,
    MediaQueryArgsSchema,
    MediaSchema,
    MediaUpdateSchema,
    MediaUploadSchema,
)
from app.services import media as media_service
from app.services.media_probe import ALLOWED_TYPES


class _MultipartParser(JsonBodyParser):
    """Reads a multipart body's files and its plain fields (alt_text) as one set of arguments,
    so one schema documents the whole multipart/form-data body."""

    def load_files(self, req: Any, schema: Any) -> Any:
        return self._makeproxy(CombinedMultiDict([req.files, req.form]), schema)


class _MediaBlueprint(Blueprint):
    ARGUMENTS_PARSER = _MultipartParser()


blp = _MediaBlueprint(
    "media", __name__, url_prefix="/v1/brands/<id(brd):brand_id>/media",
    description="A brand's images and videos, for its posts",
)  # fmt: skip


@blp.route("")
class MediaList(MethodView):
    @blp.doc(operationId="listMedia")
    @brand_route("media.read")
    @blp.arguments(MediaQueryArgsSchema, location="query")
    @blp.response(200, MediaPageSchema, headers=LINK_HEADER_DOC)
    def get(self, args, brand):
        """List a brand's media

        Newest last (keyset pages by id); deleted media are left out. Filter with
        `kind=image` or `kind=video`. The brand's client users see only the media of the posts
        they see; any other item is a 404 for them.
        """
        stmt = media_service.list_statement(brand.id, current_principal(), args.get("kind"))
        return paginate(stmt, Media.id, args)

    @blp.doc(operationId="uploadMedia")
    @body_limit("MEDIA_MAX_BYTES", framing=MULTIPART_FRAMING)
    @brand_route("media.write")  # a 404 or 403 before the upload is read
    @idempotent
    @blp.arguments(MediaUploadSchema, location="files")
    @blp.response(201, MediaSchema, headers=ETAG_HEADER_DOC)
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE", description="The file is too big")
    def post(self, data, brand):
        """Upload an image or a video

        A multipart/form-data body with the `file` and an optional `alt_text`. The type is
        detected from the file's bytes (JPEG, PNG, GIF, WebP, MP4, MOV); a file whose name or
        declared type says otherwise is refused with 422, an oversized one with 413. Limits per
        network (e.g. Bluesky's 1 MB images) are checked when a post using the file is validated.
        """
        upload = data["file"]
        media = media_service.upload(
            brand,
            upload.stream,
            filename=upload.filename,
            declared_type=upload.mimetype,
            alt_text=data.get("alt_text"),
            user_id=current_principal().user_id,
            actor=current_actor(),
        )
        return send_etag(media)


@blp.route("/<id(med):media_id>")
class MediaById(MethodView):
    get = operation(
        read_view(blp, "media.read", MediaSchema, load=Media),
        "getMedia",
        """One media item

        Its detected type, size, dimensions, duration (videos), checksum and alt text.
        """,
    )
    patch = operation(
        update_view(
            blp, "media.write", MediaUpdateSchema, MediaSchema, media_service.update, load=Media
        ),
        "updateMedia",
        """Change a media item's alt text

        Send the ETag you read as `If-Match` to be sure not to overwrite someone else's change.
        """,
    )

    @blp.doc(operationId="deleteMedia")
    @brand_route("media.write", load=Media, if_match=True)
    @blp.response(204)
    @blp.alt_response(409, response="CONFLICT", description="A post in review or scheduled uses it")
    def delete(self, brand, media):
        """Delete a media item and its file

        Refused (409) while a post in review, approved or scheduled uses it. Posts already
        published keep naming it; its file is removed at once.
        """
        media_service.delete(media, actor=current_actor())


_CONTENT_RESPONSE = {
    "description": "The file's bytes, with its detected type",
    "headers": {"ETag": {"description": "The file's SHA-256", "schema": {"type": "string"}}},
    "content": {
        content_type: {"schema": {"type": "string", "format": "binary"}}
        for content_type in ALLOWED_TYPES
    },
}


def _send(media: Media, *, cache_control: str) -> Any:
    path, stream = media_service.open_file(media)
    response = send_file(
        path or stream,  # type: ignore[arg-type]
        mimetype=media.content_type,
        download_name=media_service.download_name(media),
        etag=media.sha256,
        conditional=path is not None,
        max_age=0,
    )
    if stream is not None:
        # Werkzeug knows a stream's length only for BytesIO; ours is recorded at upload, and
        # with it If-None-Match and byte ranges work as they do for a file on disk.
        response.content_length = media.size_bytes
        response = response.make_conditional(
            request, accept_ranges=True, complete_length=media.size_bytes
        )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = cache_control
    return response


@blp.route("/<id(med):media_id>/content")
class MediaContent(MethodView):
    @blp.doc(operationId="downloadMedia")
    @brand_route("media.read", load=Media)
    @blp.response(200)
    @blp.doc(responses={"200": _CONTENT_RESPONSE})
    @blp.alt_response(304, response="NOT_MODIFIED", description="If-None-Match matched")
    def get(self, brand, media):
        """Download a media item's file

        What publishing workers send to the networks; authenticated like every route. Honours
        `If-None-Match` and byte ranges.
        """
        return _send(media, cache_control="private, no-cache")


files_blp = Blueprint(
    "media_files", __name__, url_prefix="/v1/media-files",
    description="Signed, expiring links to media files, for networks that fetch media by URL",
)  # fmt: skip


@files_blp.route("/<token>")
class MediaFileByLink(MethodView):
    @files_blp.doc(operationId="downloadMediaByLink")
    @public
    @files_blp.response(200)
    @files_blp.doc(responses={"200": _CONTENT_RESPONSE})
    @files_blp.alt_response(304, response="NOT_MODIFIED", description="If-None-Match matched")
    def get(self, token):
        """Download a media file through a signed link

        The link is the credential: the publishing code mints it for one media item (an hour
        by default, MEDIA_LINK_TTL_SECONDS) for networks such as Instagram that download media
        from a URL themselves. A forged, expired or deleted media's link is a 404.
        """
        media = media_service.get_by_signed_token(token)
        return _send(media, cache_control="no-store")
