"""Reading QuickBooks for a pull: the change feed from a watermark, full reloads, reads by Id, and publishing.

Incremental reads use the change feed (CDC) from the organization's watermark for that kind; the client windows
past its 1,000-objects cap. A full reload (query paging) replaces it when there is no watermark yet, when it is
older than ``full_reload_after_days`` (the feed reaches 30 days back), when QuickBooks refuses the feed, or when
the feed could not be read completely. Watermarks are QuickBooks' own time (the feed's response time, or a probe
before a full reload), less an overlap, and are stored only after everything read was published.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from pull_sync import store
from pull_sync.deps import Deps
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.qbo import CdcResult, QboCompany, QboQuery, QboValidationError

__all__ = ["FeedStart", "Mode", "Summary", "commit_watermark", "open_feed", "publish_batches", "read_by_ids"]

log = logging.getLogger(__name__)

Mode = Literal["incremental", "full", "targeted"]
T = TypeVar("T")

_IDS_PER_QUERY = 100
_PUBLISH_BATCH = 250


@dataclass
class Summary:
    """What one pull did; its text is the ledger's warning line for the run ("last sync" in Batchly's UI)."""

    kind: str
    mode: Mode
    reason: str = ""
    read: int = 0
    changes: Counter[str] = field(default_factory=Counter)
    skipped: int = 0

    @property
    def published(self) -> int:
        return sum(self.changes.values())

    def text(self) -> str:
        counts = ", ".join(f"{n} {change}" for change, n in sorted(self.changes.items())) or "no changes"
        how = self.mode + (f": {self.reason}" if self.reason else "")
        extra = f", {self.skipped} skipped" if self.skipped else ""
        return f"{self.kind}: {self.read} read, {counts}{extra} ({how})"


@dataclass(frozen=True, slots=True)
class FeedStart:
    mode: Literal["incremental", "full"]
    reason: str
    #: The change feed's result for an incremental read; None means: reload everything.
    cdc: CdcResult | None
    #: Where the next read starts once this one is published.
    next_since: datetime


async def open_feed(
    deps: Deps, company: QboCompany, org: UUID, kind: str, entities: Sequence[str], *, full_requested: bool
) -> FeedStart:
    """Decide between the change feed and a full reload, and read the feed if it is the feed."""
    overlap = timedelta(seconds=deps.settings.change_feed_overlap_seconds)
    async with deps.db.connect() as conn:
        mark = await store.get_watermark(conn, org, kind)
    wall = datetime.now(UTC)
    if full_requested:
        reason = "requested"
    elif mark is None:
        reason = "first run"
    elif wall - mark.changed_since > timedelta(days=deps.settings.full_reload_after_days):
        reason = f"last read more than {deps.settings.full_reload_after_days} days ago"
    else:
        try:
            cdc = await company.cdc(entities, mark.changed_since)
        except QboValidationError as exc:  # e.g. "older than fixed days": QuickBooks' clock is ahead of ours
            log.warning("%s change feed refused for %s (%s); reloading everything", kind, org, exc.code)
            reason = f"change feed refused ({exc.code})"
        else:
            if cdc.complete:
                return FeedStart("incremental", "", cdc, _since(cdc.server_time, wall) - overlap)
            reason = f"change feed incomplete for {', '.join(cdc.incomplete_entities)}"
    # A full reload: everything changed after QuickBooks' "now" (read before the walk) is the next read's.
    return FeedStart("full", reason, None, await _server_now(company, entities, wall) - overlap)


async def _server_now(company: QboCompany, entities: Sequence[str], wall: datetime) -> datetime:
    """QuickBooks' current time, from a one-minute change-feed probe (the host clock if that fails)."""
    try:
        probe = await company.cdc(entities, wall - timedelta(minutes=1))
    except QboValidationError:
        return wall
    return _since(probe.server_time, wall)


def _since(server_time: str | None, fallback: datetime) -> datetime:
    if server_time:
        try:
            parsed = datetime.fromisoformat(server_time)
        except ValueError:
            return fallback
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    return fallback


async def commit_watermark(deps: Deps, org: UUID, kind: str, start: FeedStart, summary: Summary) -> None:
    """Store where the next read starts — called only after everything this read found was published."""
    async with deps.db.transaction() as conn:
        await store.save_watermark(
            conn,
            org,
            kind,
            changed_since=start.next_since,
            full=start.mode == "full",
            summary=summary.text(),
            now=datetime.now(UTC),
        )


async def read_by_ids(
    company: QboCompany, entity: str, ids: Iterable[str], *, include_inactive: bool = False
) -> dict[str, dict[str, Any]]:
    """Rows of ``entity`` by Id, 100 Ids per query; Ids that no longer exist are simply absent."""
    wanted = sorted(set(ids), key=lambda i: (len(i), i))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), _IDS_PER_QUERY):
        chunk = wanted[start : start + _IDS_PER_QUERY]
        query = QboQuery.select(entity).where("Id", "IN", chunk)
        if include_inactive:
            query = query.where("Active", "IN", [True, False])
        page = await company.query(query.max_results(1000))
        found.update({str(row.get("Id")): row for row in page.rows})
    return found


async def publish_batches(
    deps: Deps,
    items: Sequence[T],
    envelope: Callable[[T], AnyEnvelope],
    record: Callable[[AsyncConnection, Sequence[T]], Awaitable[None]],
) -> None:
    """Publish in batches (each acknowledged by the broker) and record each batch as published right after.

    A crash in between publishes that batch again with the same event ids (de-duplicated downstream); nothing is
    recorded as published before the broker has it.
    """
    for start in range(0, len(items), _PUBLISH_BATCH):
        batch = items[start : start + _PUBLISH_BATCH]
        await deps.publisher.publish(*(envelope(item) for item in batch))
        async with deps.db.transaction() as conn:
            await record(conn, batch)
