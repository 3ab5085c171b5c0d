"""The ASGI application: one origin serving discovery, OAuth, the Accounting API, the admin API and health.

``create_app`` is mountable in-process (``httpx.ASGITransport``) and served by uvicorn alike. The gateway
middleware stamps every response with ``intuit_tid`` and logs one line per request at debug level — method,
path, status, duration; never headers, query strings or bodies, so no token can reach a log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qbo_emulator import admin, ids, oauth_routes, v3_routes
from qbo_emulator.bodylimit import BodyLimitMiddleware
from qbo_emulator.config import EmulatorConfig
from qbo_emulator.core import EmulatorCore
from qbo_emulator.openapi import openapi_document

__all__ = ["GatewayMiddleware", "create_app"]

log = logging.getLogger("qbo_emulator.access")


class GatewayMiddleware:
    """Adds ``intuit_tid`` to every response and writes the access log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tid = ids.intuit_tid().encode("ascii")
        started = time.perf_counter()
        status = 0

        async def stamped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"intuit_tid", tid)]
            await send(message)

        try:
            await self.app(scope, receive, stamped)
        finally:
            if log.isEnabledFor(logging.DEBUG):
                elapsed = (time.perf_counter() - started) * 1000
                log.debug("%s %s -> %s (%.1f ms)", scope["method"], scope["path"], status, elapsed)


async def health(request: Request) -> Response:
    core: EmulatorCore = request.app.state.emulator
    return JSONResponse({"status": "ok", "companies": len(core.companies)})


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


def create_app(config: EmulatorConfig | None = None, *, core: EmulatorCore | None = None) -> Starlette:
    """The emulator as an ASGI app; ``app.state.emulator`` is its :class:`EmulatorCore`."""
    emulator = core or EmulatorCore(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await emulator.start()
        try:
            yield
        finally:
            await emulator.aclose()

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        *oauth_routes.routes,
        *v3_routes.routes,
        *admin.routes,
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(GatewayMiddleware)
    app.state.emulator = emulator
    return app
