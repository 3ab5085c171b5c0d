"""Change data capture past QBO's 1,000-objects-per-entity cap.

``GET /cdc?entities=A,B&changedSince=T`` returns at most 1000 changed objects per entity (oldest first) and looks
back at most 30 days. When an entity comes back full, there may be more: ask again for that entity from the newest
``MetaData.LastUpdatedTime`` seen, merge, de-duplicate by Id (the newest version wins), and repeat - bounded by a
window count, and stopped if a window brings nothing new (e.g. more than 1000 changes sharing one timestamp, which
no ``changedSince`` can split). Either stop is reported as ``complete=False``, never silently.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["CdcResult", "collect_changes", "parse_cdc_response"]

CdcFetch = Callable[[Sequence[str], datetime], Awaitable[Mapping[str, Any]]]
_EPOCH_FLOOR = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


@dataclass
class CdcResult:
    """Changed objects per entity (oldest first, one per Id). Deleted ones carry ``"status": "Deleted"``."""

    changes: dict[str, list[dict[str, Any]]]
    windows: int
    complete: bool
    incomplete_entities: tuple[str, ...] = ()
    server_time: str | None = None

    def changed(self, entity: str) -> list[dict[str, Any]]:
        """Objects of ``entity`` that still exist (created or updated)."""
        return [row for row in self.changes.get(entity, []) if not _is_deleted(row)]

    def deleted_ids(self, entity: str) -> list[str]:
        """Ids of ``entity`` objects deleted in the window."""
        return [str(row.get("Id")) for row in self.changes.get(entity, []) if _is_deleted(row)]


@dataclass
class _Collector:
    entities: Sequence[str]
    by_id: dict[str, dict[str, tuple[datetime, dict[str, Any]]]] = field(default_factory=dict)

    def merge(self, entity: str, rows: list[dict[str, Any]]) -> int:
        """Keep the newest version of each Id; return how many (Id, version) pairs were new."""
        seen = self.by_id.setdefault(entity, {})
        fresh = 0
        for row in rows:
            key = str(row.get("Id"))
            stamp = _updated_at(row)
            current = seen.get(key)
            if current is None or stamp > current[0]:
                seen[key] = (stamp, row)
                fresh += 1
        return fresh

    def result(self, windows: int, incomplete: Sequence[str], server_time: str | None) -> CdcResult:
        changes = {
            entity: [row for _, row in sorted(self.by_id.get(entity, {}).values(), key=lambda pair: pair[0])]
            for entity in self.entities
        }
        return CdcResult(changes, windows, not incomplete, tuple(incomplete), server_time)


async def collect_changes(
    fetch: CdcFetch, entities: Sequence[str], changed_since: datetime, *, cap: int, max_windows: int
) -> CdcResult:
    """Fetch every change since ``changed_since`` for ``entities``, windowing past the per-entity ``cap``."""
    if changed_since.tzinfo is None:
        raise ValueError("changed_since must be timezone-aware")
    if not entities:
        raise ValueError("name at least one entity")
    collector = _Collector(list(dict.fromkeys(entities)))
    first = await fetch(collector.entities, changed_since)
    windows = 1
    server_time = first.get("time") if isinstance(first.get("time"), str) else None
    pending: dict[str, datetime] = {}
    for entity, rows in parse_cdc_response(first).items():
        if entity in collector.entities:
            collector.merge(entity, rows)
            if len(rows) >= cap:
                pending[entity] = _newest(rows, changed_since)
    incomplete: list[str] = []
    while pending:
        entity, cursor = next(iter(pending.items()))
        if windows >= max_windows:
            incomplete.extend(pending)
            break
        rows = parse_cdc_response(await fetch([entity], cursor)).get(entity, [])
        windows += 1
        fresh = collector.merge(entity, rows)
        newest = _newest(rows, cursor)
        if len(rows) < cap:
            del pending[entity]
        elif fresh == 0 or newest <= cursor:
            incomplete.append(entity)  # a full window with nothing new: the cursor cannot move past it
            del pending[entity]
        else:
            pending[entity] = newest
    return collector.result(windows, incomplete, server_time)


def parse_cdc_response(payload: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """``{"CDCResponse": [{"QueryResponse": [{"Customer": [...]}, ...]}]}`` → ``{"Customer": [...], ...}``."""
    out: dict[str, list[dict[str, Any]]] = {}
    for block in _list(payload.get("CDCResponse")):
        for response in _list(block.get("QueryResponse") if isinstance(block, Mapping) else None):
            if not isinstance(response, Mapping):
                continue
            for key, value in response.items():
                if isinstance(value, list):
                    out.setdefault(key, []).extend(row for row in value if isinstance(row, dict))
    return out


def _newest(rows: list[dict[str, Any]], floor: datetime) -> datetime:
    return max((_updated_at(row) for row in rows), default=floor)


def _updated_at(row: Mapping[str, Any]) -> datetime:
    meta = row.get("MetaData")
    stamp = meta.get("LastUpdatedTime") if isinstance(meta, Mapping) else None
    if not isinstance(stamp, str):
        return _EPOCH_FLOOR
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:
        return _EPOCH_FLOOR
    return parsed if parsed.tzinfo is not None else _EPOCH_FLOOR


def _is_deleted(row: Mapping[str, Any]) -> bool:
    return str(row.get("status", "")).lower() == "deleted"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
