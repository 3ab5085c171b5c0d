"""Hand-written fakes for the client's unit tests: a scripted QBO behind ``httpx.MockTransport``, a token
provider that can refresh, and a fake clock whose ``sleep`` advances time instantly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx

from qbsync.qbo import AccessGrant, QboAuthLostError, QboClient, QboClientSettings, TokenProvider

REALM = "9130350000000001"
ORG = UUID("0b8a5f0e-2c1d-4f3e-9a7b-6c5d4e3f2a1b")

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=payload, headers={"intuit_tid": "tid-test", **(headers or {})})


def fault(code: str, message: str = "msg", detail: str = "detail", *, element: str = "") -> dict[str, Any]:
    return {
        "Fault": {"Error": [{"Message": message, "Detail": detail, "code": code, "element": element}], "type": "x"},
        "time": "2024-05-01T10:00:00.000-07:00",
    }


def always_raise(make: Callable[[], Exception]) -> Callable[[httpx.Request], httpx.Response]:
    """A reply that raises a fresh exception from ``make`` for every request."""

    def reply(request: httpx.Request) -> httpx.Response:
        raise make()

    return reply


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, str]
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ScriptedQbo:
    """Answers requests from a script (in order); after the script, with ``default`` (a function of the request)."""

    script: list[Reply] = field(default_factory=list)
    default: Callable[[httpx.Request], httpx.Response] | None = None
    requests: list[Recorded] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(
            Recorded(
                request.method,
                request.url.path,
                dict(request.url.params),
                request.headers,
                request.content,
            )
        )
        if self.script:
            reply = self.script.pop(0)
        elif self.default is not None:
            reply = self.default
        else:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        if isinstance(reply, Exception):
            raise reply
        if callable(reply) and not isinstance(reply, httpx.Response):
            return reply(request)
        return reply


@dataclass
class RefreshingTokens:
    """Issues ``tokens`` in order: each 401 report moves to the next one; when none is left the connection is lost."""

    tokens: Sequence[str] = ("token-1", "token-2")
    realm: str = REALM
    reports: list[AccessGrant] = field(default_factory=list)
    _index: int = 0

    def _grant(self, organization_id: UUID) -> AccessGrant:
        return AccessGrant(
            organization_id, self.realm, self.tokens[self._index], datetime.now(UTC) + timedelta(hours=1)
        )

    async def get_grant(self, organization_id: UUID) -> AccessGrant:
        return self._grant(organization_id)

    async def report_unauthorized(self, organization_id: UUID, grant: AccessGrant) -> AccessGrant:
        self.reports.append(grant)
        if self._index + 1 >= len(self.tokens):
            raise QboAuthLostError("refresh token revoked")
        self._index += 1
        return self._grant(organization_id)


class FakeClock:
    """Monotonic time that only moves when someone sleeps (or a test moves it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def make_client(
    qbo: ScriptedQbo,
    *,
    tokens: TokenProvider | None = None,
    clock: FakeClock | None = None,
    **overrides: Any,
) -> tuple[QboClient, FakeClock]:
    clock = clock or FakeClock()
    settings = QboClientSettings(base_url="http://qbo.test", **overrides)
    client = QboClient(
        settings,
        tokens or RefreshingTokens(),
        transport=httpx.MockTransport(qbo),
        clock=clock,
        sleep=clock.sleep,
        jitter=lambda delay: delay,
    )
    return client, clock


def new_org() -> UUID:
    return uuid4()
