"""Scheduling: weekly posting slots, schedule/queue/publish-now/reschedule/unschedule, the
calendar and the CSV import of posts. (Cancel lives with the posts: `…/posts/{post_id}/cancel`.)"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import datetime

from flask import request
from flask.views import MethodView

from app.api.http import MULTIPART_FRAMING, Blueprint, body_limit, brand_route
from app.api.idempotency import idempotent
from app.api.posts import post_step
from app.api.views import operation
from app.auth.principal import current_actor, current_principal
from app.errors import ValidationFailed
from app.models import Brand, Post
from app.schemas.posts import PostSchema
from app.schemas.scheduling import (
    DST_RULE,
    CalendarArgsSchema,
    CalendarSchema,
    PostImportResultSchema,
    PostingSlotsSchema,
    PostingSlotsUpdateSchema,
    ScheduleAtSchema,
)
from app.services import post_import, posting_slots, scheduling

blp = Blueprint(
    "scheduling",
    __name__,
    url_prefix="/v1/brands/<id(brd):brand_id>",
    description="Posting slots, scheduling and the calendar, in the brand's time zone",
)


def _with_dst_rule(view: Callable) -> Callable:
    """Append the DST rule to the view's description in the spec."""
    view.__doc__ = f"{inspect.cleandoc(view.__doc__ or '')}\n\n{DST_RULE}"
    return view


def _slots_body(brand: Brand) -> dict:
    return {
        "timezone": brand.timezone,
        "slots": [
            {"weekday": s.weekday_name, "time": s.local_time.strftime("%H:%M")}
            for s in posting_slots.weekly_slots(brand)
        ],
    }


@blp.route("/posting-slots")
class PostingSlots(MethodView):
    @blp.doc(operationId="getPostingSlots")
    @brand_route("brand.read")
    @blp.response(200, PostingSlotsSchema)
    @_with_dst_rule
    def get(self, brand):
        """The brand's weekly posting slots

        Wall-clock times in the brand's IANA time zone, used by the queue.
        """
        return _slots_body(brand)

    @blp.doc(operationId="replacePostingSlots")
    @brand_route("brand.update")
    @blp.arguments(PostingSlotsUpdateSchema)
    @blp.response(200, PostingSlotsSchema)
    @_with_dst_rule
    def put(self, data, brand):
        """Replace the brand's weekly posting slots

        Send the whole weekly set (at most 200, each weekday and time once); it replaces the
        current one.
        """
        posting_slots.replace_slots(brand, data["slots"], actor=current_actor())
        return _slots_body(brand)


@blp.route("/calendar")
class Calendar(MethodView):
    @blp.doc(operationId="getCalendar")
    @brand_route("posts.read")
    @blp.arguments(CalendarArgsSchema, location="query")
    @blp.response(200, CalendarSchema)
    @_with_dst_rule
    def get(self, args, brand):
        """The brand's calendar: posts and free slots in a range

        Posts scheduled or published in [from, to) and the posting slots no post holds, each
        with its instant in UTC (`at`) and on the brand's clock with the offset then in force
        (`local_at`). The range is at most 92 days.
        """
        return posting_slots.calendar(brand, args["from_"], args["to"], current_principal())


# What the post's status does not allow: scheduling a draft, moving a published post...
_CONFLICT = "The post's status does not allow this"


def _to_instant(move: Callable[[Post, datetime], Post]) -> Callable:
    """The view that schedules a post at the instant `at`, or moves it there (the other
    schedule changes take no body: `post_step`)."""

    @brand_route("posts.write", load=Post, if_match=True, etag=True)
    @blp.arguments(ScheduleAtSchema)
    @blp.response(200, PostSchema)
    @blp.alt_response(409, response="CONFLICT", description=_CONFLICT)
    def post(self, data, brand, post):
        return move(post, data["at"], actor=current_actor())

    return post


@blp.route("/posts/<id(pst):post_id>/schedule")
class PostSchedule(MethodView):
    post = operation(
        _to_instant(scheduling.schedule_at),
        "schedulePost",
        """Schedule a post at an instant

        `at` is RFC 3339 with an offset (a time without one is refused) and must be in the
        future. The post must be approved unless the brand's approval mode is `none`. One
        delivery per target account waits for the publishing workers.
        """,
    )


@blp.route("/posts/<id(pst):post_id>/queue")
class PostQueue(MethodView):
    post = _with_dst_rule(
        operation(
            post_step(blp, scheduling.add_to_queue, _CONFLICT, checks_content=True),
            "queuePost",
            """Add a post to the queue

            Schedules the post in the brand's next posting slot that no other post holds
            (409 when the brand has no slots).
            """,
        )
    )


@blp.route("/posts/<id(pst):post_id>/publish-now")
class PostPublishNow(MethodView):
    post = operation(
        post_step(blp, scheduling.publish_now, _CONFLICT, checks_content=True),
        "publishPostNow",
        """Publish a post now

        Schedules the post (or moves its schedule) to the current instant, so the publishing
        workers take it at once. Approval rules apply as for scheduling.
        """,
    )


@blp.route("/posts/<id(pst):post_id>/reschedule")
class PostReschedule(MethodView):
    post = operation(
        _to_instant(scheduling.reschedule),
        "reschedulePost",
        """Move a scheduled post to another instant

        Only while no delivery of it has been handed to a worker. `at` is RFC 3339 with an
        offset, in the future.
        """,
    )


@blp.route("/posts/<id(pst):post_id>/unschedule")
class PostUnschedule(MethodView):
    post = operation(
        post_step(blp, scheduling.unschedule, _CONFLICT),
        "unschedulePost",
        """Take a post off the schedule

        Its waiting deliveries are removed and it goes back to `approved` (or to `draft` when
        the brand's approval mode is `none`). Refused once publishing has started.
        """,
    )


_CSV_BODY = {
    "required": True,
    "description": (
        "The CSV as a `text/csv` body, or as the `file` field of a `multipart/form-data` form. "
        "UTF-8, a header row, RFC 4180 quoting; columns `text` and `accounts` (account ids "
        "separated by spaces or `;`) are required, `time` (RFC 3339 with an offset; empty adds "
        "the post to the queue) and `labels` (separated by `;`) are optional. At most "
        f"{post_import.MAX_ROWS} posts and {post_import.MAX_BYTES} bytes."
    ),
    "content": {
        "text/csv": {
            "schema": {"type": "string", "maxLength": post_import.MAX_BYTES},
            "example": "text,accounts,time,labels\n"
            '"Spring menu is out!",acc_01JD5ZQ7R9X4M2B8C6N3P1T0VW,2026-03-30T09:00:00+02:00,menu\n',
        },
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
    },
}


def _csv_from_request() -> str:
    # An oversized body was refused before the view (`body_limit`); the CSV inside a form
    # is checked again once read.
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise ValidationFailed(
                "Send the CSV in the form field 'file'.", errors={"file": ["Missing."]}
            )
        return post_import.decode(upload.stream.read(post_import.MAX_BYTES + 1))
    if request.mimetype in ("text/csv", "text/plain"):
        # get_data, not the stream: Idempotency-Key handling may have read (and cached) it.
        return post_import.decode(request.get_data())
    raise ValidationFailed(
        "Send the CSV as a text/csv body or as the 'file' field of a multipart/form-data form.",
        errors={"file": ["Missing."]},
    )


@blp.route("/posts/import")
class PostImport(MethodView):
    @body_limit(post_import.MAX_BYTES, framing=MULTIPART_FRAMING)
    @brand_route("posts.write")
    @idempotent
    @blp.doc(requestBody=_CSV_BODY)
    @blp.response(201, PostImportResultSchema)
    @blp.alt_response(
        422,
        response="UNPROCESSABLE_ENTITY",
        description="Some rows are not valid (nothing was created); `errors` lists each",
    )
    @blp.doc(operationId="importPosts")
    def post(self, brand):
        """Import posts from a CSV file

        Every row is checked first (text, accounts of this brand, time, labels, and each
        target network's own rules); if any row is wrong, nothing is created and the 422 lists
        every problem as `errors["rows.<row>.<column>"]`, rows numbered as a spreadsheet shows
        them (the header is row 1). Otherwise all posts are created in one transaction and
        scheduled at their time or queued into the brand's next free posting slots, in file
        order. In a brand whose approval mode is not `none`, posts are imported as drafts to
        submit for approval, and a row with a time is an error.
        """
        user_id = current_principal().user_id
        created = post_import.import_posts(
            brand, _csv_from_request(), user_id=user_id, actor=current_actor()
        )
        return {"count": len(created), "posts": [item["post"] for item in created]}
