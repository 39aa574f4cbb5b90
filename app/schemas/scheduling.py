"""Posting slots, scheduling requests, the calendar and CSV import results."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from app.fields import Timestamp
from app.models import PostStatus
from app.models.post import WEEKDAYS
from app.schemas.posts import PostSchema

DST_RULE = (
    "Slots are wall-clock times in the brand's IANA time zone: a 09:00 slot is 09:00 local on "
    "both sides of a DST change. On the day the clocks spring forward, a slot inside the skipped "
    "hour (e.g. 02:30 in Europe/Paris on 2026-03-29) fires at the first valid local time after "
    "the gap (03:00). On the day they fall back, a slot in the repeated hour fires once, at its "
    "first occurrence (the daylight-saving one)."
)


def _utc_instant() -> ma.fields.AwareDateTime:
    return ma.fields.AwareDateTime(required=True, metadata={"description": "The instant, in UTC"})


def _local_instant() -> ma.fields.AwareDateTime:
    return ma.fields.AwareDateTime(
        required=True,
        metadata={"description": "The same instant on the brand's clock, with its offset then"},
    )


class PostingSlotSchema(ma.Schema):
    weekday = ma.fields.String(required=True, validate=validate.OneOf(WEEKDAYS))
    time = ma.fields.String(
        required=True,
        validate=validate.Regexp(
            r"^([01][0-9]|2[0-3]):[0-5][0-9]$", error="A local time is HH:MM, 00:00 to 23:59."
        ),
        metadata={"description": "Local wall-clock time, 24-hour HH:MM", "example": "09:00"},
    )


class PostingSlotsSchema(ma.Schema):
    timezone = ma.fields.String(
        required=True,
        metadata={"description": "The brand's IANA time zone", "example": "Europe/Paris"},
    )
    slots = ma.fields.List(ma.fields.Nested(PostingSlotSchema), required=True)


class PostingSlotsUpdateSchema(ma.Schema):
    slots = ma.fields.List(
        ma.fields.Nested(PostingSlotSchema),
        required=True,
        validate=validate.Length(max=200),
        metadata={
            "description": "The full weekly set, each slot once; replaces the current one",
            "uniqueItems": True,
        },
    )


class ScheduleAtSchema(ma.Schema):
    at = Timestamp(
        required=True,
        metadata={
            "description": "RFC 3339 instant with an offset, in the future",
            "example": "2026-03-30T09:00:00+02:00",
        },
    )


class CalendarArgsSchema(ma.Schema):
    from_ = Timestamp(
        required=True, data_key="from", metadata={"description": "Start (inclusive), with offset"}
    )
    to = Timestamp(
        required=True, metadata={"description": "End (exclusive), with offset; at most 92 days on"}
    )


class CalendarPostSchema(ma.Schema):
    id = ma.fields.String(required=True)
    status = ma.fields.String(required=True, validate=validate.OneOf([s.value for s in PostStatus]))
    text = ma.fields.String(required=True)
    labels = ma.fields.List(ma.fields.String(), required=True)
    account_ids = ma.fields.List(ma.fields.String(), required=True)
    at = _utc_instant()
    local_at = _local_instant()
    published_at = ma.fields.AwareDateTime(required=True, allow_none=True)


class CalendarSlotSchema(ma.Schema):
    at = _utc_instant()
    local_at = _local_instant()


class CalendarSchema(ma.Schema):
    timezone = ma.fields.String(required=True)
    from_ = ma.fields.AwareDateTime(required=True, data_key="from")
    to = ma.fields.AwareDateTime(required=True)
    posts = ma.fields.List(ma.fields.Nested(CalendarPostSchema), required=True)
    free_slots = ma.fields.List(ma.fields.Nested(CalendarSlotSchema), required=True)


class PostImportResultSchema(ma.Schema):
    count = ma.fields.Integer(required=True, metadata={"description": "Posts created"})
    posts = ma.fields.List(
        ma.fields.Nested(PostSchema),
        required=True,
        metadata={"description": "The created posts, in the file's order"},
    )
