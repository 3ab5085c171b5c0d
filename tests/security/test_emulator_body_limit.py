"""Regression (found by the campaign's size-limit test): the emulator read any request body whole into memory.

A 30 MB customer body was parsed before being refused as a too-long name; now every route refuses a body over
``MAX_BODY_BYTES`` with 413 — declared by ``Content-Length`` or streamed without one — and keeps serving.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from qbo_emulator import EmulatorConfig, create_app
from qbo_emulator.bodylimit import MAX_BODY_BYTES


async def _chunks(total: int, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        chunk = b"x" * min(size, total - sent)
        sent += len(chunk)
        yield chunk


async def test_every_route_refuses_an_oversized_body_declared_or_streamed() -> None:
    app = create_app(EmulatorConfig())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://qbo.test") as client:
        realm = (await client.post("/_admin/companies", json={"name": "Limits Co"})).json()["realm_id"]
        token = (await client.post(f"/_admin/companies/{realm}/tokens", json={})).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
        too_big = b"x" * (MAX_BODY_BYTES + 1)
        for path in (f"/v3/company/{realm}/customer", f"/v3/company/{realm}/batch", "/oauth2/v1/tokens/bearer"):
            declared = await client.post(path, content=too_big, headers=headers)
            assert declared.status_code == 413, (path, declared.text[:200])
            assert "intuit_tid" in declared.headers
        streamed = await client.post(
            "/_admin/companies", content=_chunks(MAX_BODY_BYTES + 1), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        # a body within the bound still works
        created = await client.post(
            f"/v3/company/{realm}/customer", json={"DisplayName": "Within Bounds"}, headers=headers
        )
        assert created.status_code == 200, created.text
