"""A recorder in front of the QBO emulator's token endpoint (an ASGI wrapper; the emulator itself is unchanged).

It counts what reaches Intuit's token endpoint — the figure the single-flight tests assert on — keeps every token
value the emulator hands out (the log scans look for each of them), can make the endpoint slow (so concurrent
refreshes really overlap), and can *hold* the answer of the next refresh after the emulator applied it: the grant
has rotated, the caller never hears back. That is the "Intuit answered, the process has not written yet" moment
the crash tests kill token-manager in.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qbo_emulator.responses import ConnectionDropped

__all__ = ["TokenCall", "TokenEndpointRecorder"]

TOKEN_PATH = "/oauth2/v1/tokens/bearer"


@dataclass(frozen=True)
class TokenCall:
    grant_type: str | None
    status: int
    error: str | None


class TokenEndpointRecorder:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.calls: list[TokenCall] = []
        self.issued: set[str] = set()
        self.delay_s = 0.0
        self._hold_next_refresh = False
        self.holding = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    # ---- what tests read ---------------------------------------------------------------------------------------------
    def count(self, grant_type: str, *, status: int | None = None) -> int:
        with self._lock:
            return sum(1 for c in self.calls if c.grant_type == grant_type and status in (None, c.status))

    def refreshes(self) -> int:
        return self.count("refresh_token")

    def hold_next_refresh(self) -> None:
        """The next refresh is applied by the emulator but never answered (until :meth:`release` is set)."""
        self.holding.clear()
        self.release.clear()
        self._hold_next_refresh = True

    # ---- ASGI ------------------------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != TOKEN_PATH:
            await self.app(scope, receive, send)
            return
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        body: list[bytes] = []
        sent: list[Message] = []

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body.append(message.get("body", b""))
            return message

        async def capture(message: Message) -> None:
            sent.append(message)

        try:
            await self.app(scope, recording_receive, capture)
        finally:
            grant = self._record(b"".join(body), sent)
        if grant == "refresh_token" and self._take_hold():
            await self._hold()
            raise ConnectionDropped  # the answer never leaves (the emulator's log filter keeps this quiet)
        for message in sent:
            await send(message)

    def _record(self, request_body: bytes, sent: list[Message]) -> str | None:
        form = parse_qs(request_body.decode("utf-8", "replace"))
        grant = form.get("grant_type", [None])[0]
        status = next((m["status"] for m in sent if m["type"] == "http.response.start"), 0)
        payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        parsed: Any = None
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = None
        error = parsed.get("error") if isinstance(parsed, dict) else None
        with self._lock:
            self.calls.append(TokenCall(grant, status, error))
            if status == 200 and isinstance(parsed, dict):
                for key in ("access_token", "refresh_token"):
                    if isinstance(parsed.get(key), str):
                        self.issued.add(parsed[key])
        return grant

    def _take_hold(self) -> bool:
        with self._lock:
            hold, self._hold_next_refresh = self._hold_next_refresh, False
        return hold

    async def _hold(self) -> None:
        self.holding.set()
        deadline = time.monotonic() + 60
        while not self.release.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
