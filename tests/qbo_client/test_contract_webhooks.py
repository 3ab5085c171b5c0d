"""Contract: the emulator's webhooks in both formats verify and parse with ``qbsync.qbo.webhooks``."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from qbsync.qbo.webhooks import WebhookEvent, parse_webhook, verify_webhook_signature
from tests.qbo_client.conftest import Live
from tests.qbo_client.test_contract_operations import new_customer

VERIFIER = "qbsync-dev-verifier"


class Receiver:
    """A webhook endpoint on 127.0.0.1 that keeps every (path, body, signature) it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes, str | None]] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: Request) -> Response:
        self.received.append((request.url.path, await request.body(), request.headers.get("intuit-signature")))
        self.arrived.set()
        return Response(status_code=200)

    def events(self, path: str) -> list[WebhookEvent]:
        return [event for p, body, _ in self.received if p == path for event in parse_webhook(body)]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/{name}", receiver.handle, methods=["POST"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:  # uvicorn offers a flag, not an event
                await asyncio.sleep(0.01)
        yield receiver, f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        sock.close()


async def test_both_webhook_formats_verify_and_normalise_to_the_same_events(
    live: Live, receiver: tuple[Receiver, str]
) -> None:
    sink, url = receiver
    for fmt in ("legacy", "cloudevents"):
        response = await live.admin.post(
            "/_admin/webhooks",
            json={"url": f"{url}/{fmt}", "format": fmt, "entities": ["Customer"], "realm_ids": [live.realm_id]},
        )
        assert response.status_code == 201, response.text
    customer = await new_customer(live, "Hooked Hanna", "wh-1")

    async with asyncio.timeout(15):  # the emulator aggregates for a short window, then delivers
        while {path for path, _, _ in sink.received} != {"/legacy", "/cloudevents"}:
            sink.arrived.clear()
            await sink.arrived.wait()

    for _, body, signature in sink.received:
        assert verify_webhook_signature(body, signature, VERIFIER)
        assert not verify_webhook_signature(body, signature, "wrong-verifier")
    for path in ("/legacy", "/cloudevents"):
        (event,) = sink.events(path)
        assert (event.realm_id, event.entity, event.entity_id, event.operation) == (
            live.realm_id,
            "Customer",
            customer["Id"],
            "Create",
        )
