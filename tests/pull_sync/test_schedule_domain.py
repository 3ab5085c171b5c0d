"""Schedule slots: local times per time zone, Sunday-only jobs, daylight saving changes, catching up."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from qbsync.domain.schedule import ScheduleSpec, Slot, due_slots, latest_slot, parse_schedule

LA = ZoneInfo("America/Los_Angeles")
TOKYO = ZoneInfo("Asia/Tokyo")
SEED = {
    "payments": parse_schedule("02:00"),
    "customers_flush": parse_schedule("03:00"),
    "items": parse_schedule("04:00"),
    "tax": parse_schedule("sun 02:00"),
}


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_schedules_parse_daily_weekly_and_off() -> None:
    assert parse_schedule("02:00") == ScheduleSpec(time(2, 0))
    assert parse_schedule(" Sun 02:30 ") == ScheduleSpec(time(2, 30), weekday=6)
    assert parse_schedule("off") is None
    for bad in ("2am", "25:00", "xyz 02:00", "02:60"):
        with pytest.raises(ValueError, match="schedule"):
            parse_schedule(bad)


def test_the_same_instant_is_a_different_local_slot_in_each_time_zone() -> None:
    now = _utc("2026-06-10T11:30:00+00:00")  # 04:30 in Los Angeles, 20:30 in Tokyo
    la = {s.job: s for s in due_slots(SEED, LA, now, catch_up=timedelta(hours=6))}
    assert set(la) == {"payments", "customers_flush", "items"}
    assert la["payments"].key == "payments@2026-06-10"
    assert la["payments"].fire_at == _utc("2026-06-10T02:00:00-07:00")
    assert due_slots(SEED, TOKYO, now, catch_up=timedelta(hours=6)) == [], "Tokyo's 2-4 AM was 16 hours ago"
    assert [s.key for s in due_slots(SEED, TOKYO, now, catch_up=timedelta(hours=20))] == [
        "payments@2026-06-10",
        "customers_flush@2026-06-10",
        "items@2026-06-10",
    ]


def test_a_slot_is_not_due_a_moment_before_its_local_time() -> None:
    spec = parse_schedule("04:00")
    assert spec is not None
    before = latest_slot("items", spec, LA, _utc("2026-06-10T03:59:59-07:00"))
    at = latest_slot("items", spec, LA, _utc("2026-06-10T04:00:00-07:00"))
    assert before.local_date == date(2026, 6, 9)
    assert at == Slot("items", date(2026, 6, 10), _utc("2026-06-10T04:00:00-07:00"))


def test_tax_runs_on_sunday_in_the_organizations_own_week() -> None:
    spec = parse_schedule("sun 02:00")
    assert spec is not None
    now = _utc("2026-06-13T18:00:00+00:00")  # Saturday 11:00 in Los Angeles, Sunday 03:00 in Tokyo
    assert latest_slot("tax", spec, TOKYO, now).key == "tax@2026-06-14"
    assert latest_slot("tax", spec, LA, now).key == "tax@2026-06-07"
    monday = _utc("2026-06-15T09:00:00-07:00")
    assert latest_slot("tax", spec, LA, monday).key == "tax@2026-06-14"


def test_a_time_skipped_by_daylight_saving_runs_right_after_the_gap() -> None:
    spec = parse_schedule("02:30")
    assert spec is not None
    # 2026-03-08 02:00 PST becomes 03:00 PDT in Los Angeles
    slot = latest_slot("payments", spec, LA, _utc("2026-03-08T12:00:00+00:00"))
    assert slot.key == "payments@2026-03-08"
    assert slot.fire_at == _utc("2026-03-08T03:30:00-07:00")
    early = latest_slot("payments", spec, LA, _utc("2026-03-08T03:29:00-07:00"))
    assert early.key == "payments@2026-03-07"


def test_a_time_repeated_by_daylight_saving_is_one_slot_at_its_first_occurrence() -> None:
    spec = parse_schedule("01:30")
    assert spec is not None
    first = _utc("2026-11-01T01:30:00-07:00")  # PDT; the clocks go back at 02:00 PDT to 01:00 PST
    second = _utc("2026-11-01T01:30:00-08:00")
    assert latest_slot("reconcile", spec, LA, first).fire_at == first
    assert latest_slot("reconcile", spec, LA, second) == latest_slot("reconcile", spec, LA, first)


def test_a_missed_slot_is_caught_up_only_within_the_window() -> None:
    now = _utc("2026-06-10T09:00:00-07:00")
    within = due_slots(SEED, LA, now, catch_up=timedelta(hours=7))
    assert [s.job for s in within] == ["payments", "customers_flush", "items"]
    assert [s.job for s in due_slots(SEED, LA, now, catch_up=timedelta(hours=5))] == ["items"]
    assert due_slots({"payments": None}, LA, now, catch_up=timedelta(days=1)) == [], "'off' never runs"
