"""Helpers for the emulator's own tests: a small authenticated v3 client bound to one company."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Api:
    """One company's ``/v3/company/{realm}`` with a valid token, over any httpx client."""

    client: httpx.AsyncClient
    realm: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}

    def path(self, rest: str) -> str:
        return f"/v3/company/{self.realm}/{rest}"

    async def get(self, rest: str, **params: Any) -> httpx.Response:
        return await self.client.get(self.path(rest), params=params or None, headers=self.headers)

    async def post(self, rest: str, body: Any, **params: Any) -> httpx.Response:
        return await self.client.post(self.path(rest), json=body, params=params or None, headers=self.headers)

    async def create(self, entity: str, body: dict[str, Any], **params: Any) -> dict[str, Any]:
        """Create and return the entity, failing the test on a fault."""
        response = await self.post(entity.lower(), body, **params)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()[entity]
        return result

    async def read(self, entity: str, entity_id: str) -> dict[str, Any]:
        response = await self.get(f"{entity.lower()}/{entity_id}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()[entity]
        return result

    async def query(self, text: str) -> dict[str, Any]:
        response = await self.client.post(
            self.path("query"), content=text, headers={**self.headers, "Content-Type": "application/text"}
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()["QueryResponse"]
        return result


def fault_of(response: httpx.Response) -> dict[str, Any]:
    """The first ``Fault.Error`` item of a QBO fault response."""
    error: dict[str, Any] = response.json()["Fault"]["Error"][0]
    return error


def line(
    amount: float, item: str = "1", qty: float | None = None, price: float | None = None, **detail: Any
) -> dict[str, Any]:
    """A SalesItemLineDetail line."""
    sales: dict[str, Any] = {"ItemRef": {"value": item}, **detail}
    if qty is not None:
        sales["Qty"] = qty
    if price is not None:
        sales["UnitPrice"] = price
    return {"DetailType": "SalesItemLineDetail", "Amount": amount, "SalesItemLineDetail": sales}


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0, interval_s: float = 0.01) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout_s`` (nothing waits forever)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(interval_s)
