"""The HTTP side of every process: /health, /metrics, plus any routes a service adds, served by uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["BodyLimitMiddleware", "HealthCheck", "HttpServer", "build_app"]

log = logging.getLogger(__name__)

#: A health check returns (ok, detail); detail is JSON-serialisable and never secret.
HealthCheck = Callable[[], Awaitable[tuple[bool, Any]]]


def build_app(
    service: str,
    checks: dict[str, HealthCheck],
    *,
    routes: Sequence[BaseRoute] = (),
    max_body_bytes: int = 1_048_576,
) -> Starlette:
    async def health(_request: Request) -> Response:
        results: dict[str, Any] = {}
        healthy = True
        for name, check in checks.items():
            try:
                ok, detail = await asyncio.wait_for(check(), timeout=3)
            except Exception as exc:
                ok, detail = False, f"{type(exc).__name__}"
            healthy = healthy and ok
            results[name] = {"ok": ok, "detail": detail}
        body = {"service": service, "status": "ok" if healthy else "unhealthy", "checks": results}
        return JSONResponse(body, status_code=200 if healthy else 503)

    async def metrics(_request: Request) -> Response:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[Route("/health", health), Route("/metrics", metrics), *routes],
        middleware=[Middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)],
    )


class BodyLimitMiddleware:
    """Reject request bodies over ``max_bytes`` with 413 before the application reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await PlainTextResponse("request body too large", status_code=413)(scope, receive, send)
            return
        received = 0

        async def limited() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await PlainTextResponse("request body too large", status_code=413)(scope, receive, send)


class _TooLarge(Exception):
    pass


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process's composition root owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HttpServer:
    def __init__(self, app: ASGIApp, *, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(), name="http")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises the start-up error (port in use, ...)
                raise RuntimeError("HTTP server stopped during start-up")
            await asyncio.sleep(0.01)

    @property
    def port(self) -> int:
        servers = getattr(self._server, "servers", [])
        for server in servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self._server.config.port)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
