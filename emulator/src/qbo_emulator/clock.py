"""The emulator's single clock and QBO's time formats.

Everything time-based (token expiry and rotation, MetaData stamps, CDC windows, TxnDate defaults, rate windows,
webhook retries) reads :class:`Clock`, so a test can move a whole emulator "days" ahead without sleeping. The
clock is real time plus an offset: it keeps running, and the admin API can only move it forward (moving it back
would let a token or a CDC window run backwards, which QBO never does).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "Clock",
    "format_epoch_ms",
    "format_metadata_time",
    "format_response_time",
    "format_webhook_time",
    "parse_qbo_datetime",
    "resolve_timezone",
]


class Clock:
    """Real time plus an offset that only grows. Thread-safe: uvicorn-in-a-thread tests read it too."""

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self._source = now or (lambda: datetime.now(UTC))
        self._offset = timedelta(0)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> datetime:
        """The current emulator time, timezone-aware UTC."""
        with self._lock:
            return self._source() + self._offset

    def timestamp(self) -> float:
        """The current emulator time as POSIX seconds."""
        return self.now().timestamp()

    @property
    def offset(self) -> timedelta:
        with self._lock:
            return self._offset

    def advance(self, seconds: float) -> datetime:
        """Move forward by ``seconds`` (must be >= 0); returns the new time."""
        if seconds < 0:
            raise ValueError("the emulator clock only moves forward")
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        self._notify()
        return self.now()

    def set(self, when: datetime) -> datetime:
        """Jump to ``when`` (aware); refuses to go back in time."""
        if when.tzinfo is None:
            raise ValueError("the target time must carry a UTC offset")
        delta = (when - self.now()).total_seconds()
        if delta < 0:
            raise ValueError("the emulator clock only moves forward")
        return self.advance(delta)

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (no arguments, must not block) after every jump, e.g. to wake a retry loop."""
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()


def resolve_timezone(name: str) -> tzinfo:
    """An IANA zone, or a fixed offset such as ``-07:00``; UTC when the zone database lacks the name."""
    if name and name[0] in "+-" and ":" in name:
        sign = -1 if name[0] == "-" else 1
        hours, minutes = name[1:].split(":", 1)
        return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _offset_text(moment: datetime, colon: bool = True) -> str:
    offset = moment.utcoffset() or timedelta(0)
    total = int(offset.total_seconds())
    sign = "-" if total < 0 else "+"
    hours, minutes = divmod(abs(total) // 60, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" if colon else f"{sign}{hours:02d}{minutes:02d}"


def format_response_time(moment: datetime, zone: tzinfo) -> str:
    """The ``time`` of a response wrapper: ``2015-07-24T10:48:27.082-07:00`` (milliseconds, company offset)."""
    local = moment.astimezone(zone)
    return local.strftime("%Y-%m-%dT%H:%M:%S") + f".{local.microsecond // 1000:03d}" + _offset_text(local)


def format_metadata_time(moment: datetime, zone: tzinfo, milliseconds: bool = False) -> str:
    """A MetaData stamp: ``2015-08-27T14:59:48-07:00`` (whole seconds unless ``milliseconds``)."""
    local = moment.astimezone(zone)
    fraction = f".{local.microsecond // 1000:03d}" if milliseconds else ""
    return local.strftime("%Y-%m-%dT%H:%M:%S") + fraction + _offset_text(local)


def format_webhook_time(moment: datetime, zone: tzinfo) -> str:
    """Legacy webhook ``lastUpdated``: ``2015-10-05T14:42:19-0700`` (Intuit's documented sample)."""
    local = moment.astimezone(zone)
    return local.strftime("%Y-%m-%dT%H:%M:%S") + _offset_text(local, colon=False)


def format_epoch_ms(moment: datetime) -> int:
    """The gateway fault bodies' ``time``: epoch milliseconds."""
    return int(moment.timestamp() * 1000)


def parse_qbo_datetime(text: str, zone: tzinfo) -> datetime:
    """Parse an ISO date or date-time as QBO accepts it; values without an offset are company-local time."""
    value = text.strip().replace(" ", "+") if "T" in text else text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    if len(value) >= 5 and value[-5] in "+-" and value[-3] != ":" and "T" in value:
        value = value[:-2] + ":" + value[-2:]
    parsed = (
        datetime.fromisoformat(value)
        if "T" in value
        else datetime.combine(date.fromisoformat(value), datetime.min.time())
    )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed
