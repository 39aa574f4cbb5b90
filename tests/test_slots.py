"""Weekly posting slots → instants, DST-correct in Europe/Paris and America/New_York (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.services.slot_times import (
    WeeklySlot,
    local_view,
    next_free_slots,
    resolve_local,
    slots_between,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def daily(hh: int, mm: int = 0) -> list[WeeklySlot]:
    return [WeeklySlot(d, time(hh, mm)) for d in range(7)]


# -- a 09:00 slot stays 09:00 local across both transitions ---------------------------------------


@pytest.mark.parametrize(
    ("zone", "before", "after", "utc_before", "utc_after"),
    [
        # Paris: CET (+01) → CEST (+02) on 2026-03-29, back on 2026-10-25.
        (PARIS, date(2026, 3, 28), date(2026, 3, 29), utc(2026, 3, 28, 8), utc(2026, 3, 29, 7)),
        (PARIS, date(2026, 10, 24), date(2026, 10, 25), utc(2026, 10, 24, 7), utc(2026, 10, 25, 8)),
        # New York: EST (-05) → EDT (-04) on 2026-03-08, back on 2026-11-01.
        (NEW_YORK, date(2026, 3, 7), date(2026, 3, 8), utc(2026, 3, 7, 14), utc(2026, 3, 8, 13)),
        (
            NEW_YORK,
            date(2026, 10, 31),
            date(2026, 11, 1),
            utc(2026, 10, 31, 13),
            utc(2026, 11, 1, 14),
        ),
    ],
)
def test_nine_o_clock_stays_nine_local(zone, before, after, utc_before, utc_after):
    start = datetime.combine(before, time(0), tzinfo=zone)
    end = datetime.combine(after + timedelta(days=1), time(0), tzinfo=zone)
    instants = slots_between(daily(9), zone, start, end)
    assert instants == [utc_before, utc_after]
    assert [local_view(i, zone).time() for i in instants] == [time(9), time(9)]


# -- spring forward: a skipped local time moves to the end of the gap -----------------------------


@pytest.mark.parametrize(
    ("zone", "day", "expected_utc"),
    [
        (PARIS, date(2026, 3, 29), utc(2026, 3, 29, 1)),  # 02:30 does not exist → 03:00 CEST
        (NEW_YORK, date(2026, 3, 8), utc(2026, 3, 8, 7)),  # 02:30 does not exist → 03:00 EDT
    ],
)
def test_spring_forward_gap_moves_to_first_valid_time(zone, day, expected_utc):
    instant = resolve_local(day, time(2, 30), zone)
    assert instant == expected_utc
    assert local_view(instant, zone).time() == time(3, 0)
    # The day before and after are untouched.
    for other in (day - timedelta(days=1), day + timedelta(days=1)):
        assert local_view(resolve_local(other, time(2, 30), zone), zone).time() == time(2, 30)


def test_gap_slot_and_three_o_clock_slot_fire_once():
    slots = [WeeklySlot(6, time(2, 30)), WeeklySlot(6, time(3, 0))]  # Sunday 2026-03-29
    start = datetime(2026, 3, 29, tzinfo=PARIS)
    instants = slots_between(slots, PARIS, start, start + timedelta(days=1))
    assert instants == [utc(2026, 3, 29, 1)]


# -- fall back: a repeated local time fires once, at its first occurrence -------------------------


@pytest.mark.parametrize(
    ("zone", "day", "wall", "first_utc"),
    [
        (PARIS, date(2026, 10, 25), time(2, 30), utc(2026, 10, 25, 0, 30)),  # 02:30 CEST, not CET
        (NEW_YORK, date(2026, 11, 1), time(1, 30), utc(2026, 11, 1, 5, 30)),  # 01:30 EDT, not EST
    ],
)
def test_fall_back_repeated_time_takes_first_occurrence_once(zone, day, wall, first_utc):
    assert resolve_local(day, wall, zone) == first_utc
    slot = [WeeklySlot(day.weekday(), wall)]
    start = datetime.combine(day, time(0), tzinfo=zone)
    instants = slots_between(slot, zone, start, start + timedelta(days=1))
    assert instants == [first_utc]
    view = local_view(instants[0], zone)
    assert view.time() == wall and view.fold == 0


def test_range_over_a_whole_dst_week_has_one_instant_per_slot_per_day():
    start = datetime(2026, 10, 19, tzinfo=PARIS)  # Monday before the fall-back Sunday
    instants = slots_between(daily(2, 30) + daily(9), PARIS, start, start + timedelta(days=7))
    assert len(instants) == 14
    assert len(set(instants)) == 14
    assert {local_view(i, PARIS).time() for i in instants} == {time(2, 30), time(9)}


# -- next free slot ------------------------------------------------------------------------------


def test_next_free_slot_skips_taken_instants_and_respects_weekdays():
    slots = [WeeklySlot(0, time(9)), WeeklySlot(2, time(17, 30))]  # Monday 09:00, Wednesday 17:30
    after = datetime(2026, 3, 6, 12, tzinfo=NEW_YORK)  # Friday
    free = next_free_slots(slots, NEW_YORK, after, count=3)
    # Monday 2026-03-09 09:00 is already EDT (-04): the DST change happened on Sunday.
    assert free == [utc(2026, 3, 9, 13), utc(2026, 3, 11, 21, 30), utc(2026, 3, 16, 13)]
    taken = [free[0], free[1].astimezone(NEW_YORK)]  # any offset, same instant
    assert next_free_slots(slots, NEW_YORK, after, taken=taken) == [free[2]]


def test_next_free_slot_is_strictly_after_the_moment():
    slots = daily(9)
    at_slot = datetime(2026, 5, 4, 9, tzinfo=PARIS)
    assert next_free_slots(slots, PARIS, at_slot) == [utc(2026, 5, 5, 7)]


def test_late_evening_slot_east_of_utc_is_found_from_a_utc_moment():
    slots = [WeeklySlot(d, time(0, 30)) for d in range(7)]
    after = utc(2026, 6, 1, 21, 0)  # 23:00 in Paris
    assert next_free_slots(slots, PARIS, after) == [utc(2026, 6, 1, 22, 30)]


def test_no_slots_or_everything_taken_gives_nothing():
    after = utc(2026, 1, 1)
    assert next_free_slots([], PARIS, after) == []
    slots = [WeeklySlot(0, time(9))]
    taken = slots_between(slots, PARIS, after, after + timedelta(days=30))
    assert next_free_slots(slots, PARIS, after, taken=taken, horizon=timedelta(days=30)) == []


def test_naive_moments_and_bad_slots_are_refused():
    with pytest.raises(ValueError):
        next_free_slots(daily(9), PARIS, datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        WeeklySlot(7, time(9))
    with pytest.raises(ValueError):
        WeeklySlot(1, time(9, tzinfo=UTC))
