"""Schedule slots for pull-sync's scheduler (seed "Sync Frequency & Timing"). Pure functions.

A job runs at a wall-clock time in the organization's time zone: daily (``"02:00"``) or weekly (``"sun 02:00"``);
``"off"`` disables it. One occurrence is a *slot*, named by the job and the local date (``payments@2026-03-08``):
the scheduler claims each slot once per organization, so the name is what makes "exactly one run per slot" hold.

Daylight saving time: a time that does not exist on the day the clocks go forward (02:30 when 02:00 jumps to 03:00)
runs at the first moment after the gap (03:00 new time); a time that happens twice when the clocks go back runs at
its first occurrence — the slot name is per date, so it never runs twice.

A slot is due from its time until ``catch_up`` after it: a scheduler that was down over a slot (a deploy, an
outage) still runs it when it comes back, but a slot missed by more than that is left to the next one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "DEFAULT_ZONE",
    "ScheduleSpec",
    "Slot",
    "due_slots",
    "fire_time",
    "latest_slot",
    "local_today",
    "parse_schedule",
    "zone_of",
]

DEFAULT_ZONE = "America/Los_Angeles"  # the organization contract's default
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPEC = re.compile(r"^(?:(?P<day>[a-z]{3})\s+)?(?P<hour>\d{1,2}):(?P<minute>\d{2})$")


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    at: time
    #: 0 = Monday ... 6 = Sunday; None = every day.
    weekday: int | None = None

    def __str__(self) -> str:
        day = f"{_WEEKDAYS[self.weekday]} " if self.weekday is not None else ""
        return f"{day}{self.at:%H:%M}"


@dataclass(frozen=True, slots=True)
class Slot:
    job: str
    local_date: date
    #: When it is due, in UTC.
    fire_at: datetime

    @property
    def key(self) -> str:
        return f"{self.job}@{self.local_date.isoformat()}"


def parse_schedule(text: str) -> ScheduleSpec | None:
    """``"HH:MM"`` daily, ``"sun HH:MM"`` weekly, ``"off"`` (None). Raises ValueError on anything else."""
    value = text.strip().lower()
    if value in ("off", ""):
        return None
    match = _SPEC.match(value)
    if match is None:
        raise ValueError(f"schedule {text!r}: expected 'HH:MM', '<mon..sun> HH:MM' or 'off'")
    hour, minute = int(match["hour"]), int(match["minute"])
    if hour > 23 or minute > 59:
        raise ValueError(f"schedule {text!r}: no such time of day")
    day = match["day"]
    if day is not None and day not in _WEEKDAYS:
        raise ValueError(f"schedule {text!r}: the day must be one of {', '.join(_WEEKDAYS)}")
    return ScheduleSpec(time(hour, minute), _WEEKDAYS.index(day) if day is not None else None)


def zone_of(name: str) -> tuple[tzinfo, bool]:
    """The IANA zone ``name`` and True, or the default zone and False when the name is unknown."""
    try:
        return ZoneInfo(name), True
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE), False


def local_today(now: datetime, zone_name: str) -> date:
    """The date it is at ``now`` in the organization's time zone (what "past due" is measured against)."""
    zone, _ = zone_of(zone_name)
    return now.astimezone(zone).date()


def fire_time(spec: ScheduleSpec, local_day: date, zone: tzinfo) -> datetime:
    """The UTC instant of ``spec`` on ``local_day`` in ``zone`` (DST rules in the module docstring)."""
    wall = datetime.combine(local_day, spec.at, tzinfo=zone)  # fold=0: first occurrence; in a gap, after it
    return wall.astimezone(UTC)


def latest_slot(job: str, spec: ScheduleSpec, zone: tzinfo, now: datetime) -> Slot:
    """The most recent occurrence of ``spec`` at or before ``now``."""
    day = now.astimezone(zone).date()
    for _ in range(9):  # at most a week back, plus a day either side of a DST change
        if (spec.weekday is None or day.weekday() == spec.weekday) and fire_time(spec, day, zone) <= now:
            return Slot(job, day, fire_time(spec, day, zone))
        day -= timedelta(days=1)
    raise AssertionError("unreachable: every schedule occurs within nine days")


def due_slots(
    jobs: Mapping[str, ScheduleSpec | None], zone: tzinfo, now: datetime, *, catch_up: timedelta
) -> list[Slot]:
    """The slots due at ``now``: each job's latest occurrence, if it is not older than ``catch_up``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    slots = []
    for job, spec in jobs.items():
        if spec is None:
            continue
        slot = latest_slot(job, spec, zone, now)
        if now - slot.fire_at <= catch_up:
            slots.append(slot)
    return sorted(slots, key=lambda s: (s.fire_at, s.job))
