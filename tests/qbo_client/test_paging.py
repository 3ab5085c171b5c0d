"""Auto-paging walks STARTPOSITION forward in pages of up to 1000 and stops at the first short page."""

from __future__ import annotations

import re

import httpx
import pytest

from qbsync.qbo import QboQuery, QueryPagingLimitError
from tests.qbo_client.fakes import ORG, ScriptedQbo, json_response, make_client


def paged_customers(total: int) -> ScriptedQbo:
    rows = [{"Id": str(i), "DisplayName": f"C{i}"} for i in range(1, total + 1)]

    def answer(request: httpx.Request) -> httpx.Response:
        text = request.url.params["query"]
        start = int(re.search(r"STARTPOSITION (\d+)", text).group(1))  # type: ignore[union-attr]
        size = int(re.search(r"MAXRESULTS (\d+)", text).group(1))  # type: ignore[union-attr]
        page = rows[start - 1 : start - 1 + size]
        body: dict[str, object] = {"startPosition": start, "maxResults": len(page)}
        if page:
            body["Customer"] = page
        return json_response(200, {"QueryResponse": body, "time": "2024-05-01T10:00:00-07:00"})

    return ScriptedQbo(default=answer)


@pytest.mark.parametrize(("total", "requests"), [(0, 1), (999, 1), (1000, 2), (2500, 3)])
async def test_query_all_yields_every_row_once_in_order(total: int, requests: int) -> None:
    qbo = paged_customers(total)
    client, _ = make_client(qbo)
    async with client:
        rows = [row async for row in client.company(ORG).query_all(QboQuery.select("Customer").order_by("Id"))]
    assert [row["Id"] for row in rows] == [str(i) for i in range(1, total + 1)]
    assert len(qbo.requests) == requests
    assert all("MAXRESULTS 1000" in r.params["query"] for r in qbo.requests)
    assert [r.params["query"].split("STARTPOSITION ")[1].split()[0] for r in qbo.requests] == [
        str(1 + 1000 * i) for i in range(requests)
    ]


async def test_query_limit_sets_the_page_size_and_start_is_respected() -> None:
    qbo = paged_customers(25)
    client, _ = make_client(qbo)
    async with client:
        query = QboQuery.select("Customer").start_position(11).max_results(5)
        rows = [row async for row in client.company(ORG).query_all(query)]
    assert [row["Id"] for row in rows] == [str(i) for i in range(11, 26)]
    assert len(qbo.requests) == 4  # 5 + 5 + 5 + an empty page


async def test_runaway_paging_is_stopped_not_truncated() -> None:
    qbo = paged_customers(50)
    client, _ = make_client(qbo, query_page_size=10, query_max_pages=3)
    seen: list[dict[str, object]] = []

    async def drain() -> None:
        async for row in client.company(ORG).query_all(QboQuery.select("Customer")):
            seen.append(row)  # noqa: PERF401 - rows seen before the stop are part of the assertion

    async with client:
        with pytest.raises(QueryPagingLimitError):
            await drain()
    assert len(seen) == 30
