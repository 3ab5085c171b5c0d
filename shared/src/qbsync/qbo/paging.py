"""Query pages and the auto-paging loop over STARTPOSITION / MAXRESULTS.

QBO returns at most 1000 rows per query and omits the entity key when nothing matches. Paging walks STARTPOSITION
forward by the rows received and stops at the first short page. For a stable walk over data that may change
meanwhile, order by a field that new rows sort after (e.g. ``ORDERBY Id`` or ``MetaData.LastUpdatedTime``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from qbsync.qbo.query import QboQuery

__all__ = ["QueryPage", "QueryPagingLimitError", "iterate_query", "parse_query_response"]

_PAGE_KEYS = frozenset({"startPosition", "maxResults", "totalCount"})


class QueryPagingLimitError(RuntimeError):
    """More pages than the configured bound: a runaway walk is stopped instead of silently truncated."""


@dataclass(frozen=True)
class QueryPage:
    """One page of a query. ``total_count`` is set for ``COUNT(*)`` queries only."""

    entity: str | None
    rows: list[dict[str, Any]]
    start_position: int | None
    max_results: int | None
    total_count: int | None = None


def parse_query_response(payload: Mapping[str, Any], entity: str | None) -> QueryPage:
    """Read ``{"QueryResponse": {...}}``; the entity key is absent when nothing matched."""
    response = payload.get("QueryResponse")
    if not isinstance(response, Mapping):
        response = {}
    rows: list[dict[str, Any]] = []
    found = entity
    for key, value in response.items():
        if key in _PAGE_KEYS or not isinstance(value, list):
            continue
        if entity is None or key.lower() == entity.lower():
            rows = [row for row in value if isinstance(row, dict)]
            found = key
            break
    return QueryPage(
        entity=found,
        rows=rows,
        start_position=_int_or_none(response.get("startPosition")),
        max_results=_int_or_none(response.get("maxResults")),
        total_count=_int_or_none(response.get("totalCount")),
    )


async def iterate_query(
    fetch: Callable[[QboQuery], Awaitable[QueryPage]],
    query: QboQuery,
    *,
    page_size: int,
    max_pages: int,
) -> AsyncIterator[dict[str, Any]]:
    """Yield every row matching ``query``, one page at a time (``query.limit`` wins over ``page_size``)."""
    size = query.limit or page_size
    position = query.start or 1
    for _ in range(max_pages):
        page = await fetch(query.start_position(position).max_results(size))
        for row in page.rows:
            yield row
        if len(page.rows) < size:
            return
        position += len(page.rows)
    raise QueryPagingLimitError(f"query {query.entity} did not end within {max_pages} pages of {size}")


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
