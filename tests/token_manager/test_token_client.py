"""Unit tests of ``TokenManagerClient`` (the sync services' token provider) over ``httpx.MockTransport``:
fingerprints, caching until near expiry, one request per organization however many callers, 401 reports that
never carry the token, and the mapping of every answer to the QBO client's errors."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from qbsync.qbo import AccessGrant, QboAuthLostError, QboRequestError, QboTransportError, TokenProvider
from qbsync.settings import TokenManagerSettings
from qbsync.tokens import TokenManagerClient, token_fingerprint

ORG = uuid.UUID("7b1e2f0a-1c2d-4e5f-8a9b-0c1d2e3f4a5b")
SERVICE = "service-credential-for-tests"


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _grant_body(token: str, expires_in: int = 3600, organization_id: uuid.UUID = ORG) -> dict[str, object]:
    return {
        "organization_id": str(organization_id),
        "realm_id": "9130000000001",
        "access_token": token,
        "expires_at": (datetime.now(UTC) + timedelta(seconds=expires_in)).isoformat(),
        "expires_in": expires_in,
    }


Handler = Callable[[httpx.Request], Coroutine[Any, Any, httpx.Response]]


def _client(handler: Handler, time: FakeTime | None = None, margin: int = 120) -> TokenManagerClient:
    settings = TokenManagerSettings(
        url="http://token-manager.test", service_token=SecretStr(SERVICE), client_cache_margin_seconds=margin
    )
    return TokenManagerClient(settings, transport=httpx.MockTransport(handler), clock=time or FakeTime())


def test_the_fingerprint_is_the_first_32_hex_of_sha256() -> None:
    assert token_fingerprint("abc") == "ba7816bf8f01cfea414140de5dae2223"
    assert token_fingerprint("abc") == hashlib.sha256(b"abc").hexdigest()[:32]
    assert token_fingerprint("abd") != token_fingerprint("abc")
    with pytest.raises(ValueError):
        token_fingerprint("")


def test_it_is_a_token_provider() -> None:
    assert isinstance(_client(_never), TokenProvider)


async def test_a_grant_is_cached_until_the_margin_before_expiry() -> None:
    time = FakeTime()
    calls: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json=_grant_body(f"token-{len(calls)}", expires_in=600))

    async with _client(handler, time) as client:
        first = await client.get_grant(ORG)
        assert calls[0].url.path == f"/v1/organizations/{ORG}/token"
        assert calls[0].headers["authorization"] == f"Bearer {SERVICE}"
        time.now += 600 - 120 - 1
        assert (await client.get_grant(ORG)) is first, "still inside the cache window"
        time.now += 1
        second = await client.get_grant(ORG)
    assert second.access_token == "token-2", "asked again at expires_in - margin"
    assert len(calls) == 2
    assert first.realm_id == "9130000000001"
    assert first.organization_id == ORG


async def test_a_token_too_close_to_expiry_is_not_cached() -> None:
    calls = 0

    async def handler(_: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, json=_grant_body("short", expires_in=60))

    async with _client(handler) as client:
        await client.get_grant(ORG)
        await client.get_grant(ORG)
    assert calls == 2


async def test_fifty_concurrent_callers_share_one_request() -> None:
    calls = 0
    release = asyncio.Event()

    async def handler(_: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        await release.wait()
        return httpx.Response(200, json=_grant_body("shared"))

    async with _client(handler) as client:
        waiting = [asyncio.create_task(client.get_grant(ORG)) for _ in range(50)]
        await asyncio.sleep(0.05)
        release.set()
        grants = await asyncio.gather(*waiting)
    assert calls == 1
    assert {g.access_token for g in grants} == {"shared"}


async def test_a_cancelled_caller_does_not_cancel_the_request_the_others_wait_for() -> None:
    release = asyncio.Event()

    async def handler(_: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, json=_grant_body("survives"))

    async with _client(handler) as client:
        impatient = asyncio.create_task(client.get_grant(ORG))
        patient = asyncio.create_task(client.get_grant(ORG))
        await asyncio.sleep(0.05)
        impatient.cancel()
        release.set()
        assert (await patient).access_token == "survives"
        with pytest.raises(asyncio.CancelledError):
            await impatient


async def test_a_401_report_sends_the_fingerprint_never_the_token_and_concurrent_reports_share_it() -> None:
    reports: list[httpx.Request] = []
    release = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json=_grant_body("rejected-token"))
        reports.append(request)
        await release.wait()
        return httpx.Response(200, json=_grant_body("fresh-token"))

    async with _client(handler) as client:
        grant = await client.get_grant(ORG)
        waiting = [asyncio.create_task(client.report_unauthorized(ORG, grant)) for _ in range(20)]
        await asyncio.sleep(0.05)
        release.set()
        fresh = await asyncio.gather(*waiting)
        assert (await client.get_grant(ORG)).access_token == "fresh-token", "the new token is cached"
    assert len(reports) == 1
    assert reports[0].url.path == f"/v1/organizations/{ORG}/token/unauthorized"
    assert json.loads(reports[0].content) == {"fingerprint": token_fingerprint("rejected-token")}
    assert b"rejected-token" not in reports[0].content
    assert "rejected-token" not in str(reports[0].headers)
    assert {g.access_token for g in fresh} == {"fresh-token"}


async def test_a_report_of_an_older_token_is_answered_from_the_cache() -> None:
    requests: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request.url.path)
        return httpx.Response(200, json=_grant_body("current"))

    async with _client(handler) as client:
        current = await client.get_grant(ORG)
        stale = AccessGrant(ORG, "9130000000001", "older", datetime.now(UTC))
        assert await client.report_unauthorized(ORG, stale) is current
    assert requests == [f"/v1/organizations/{ORG}/token"], "no report was sent"


async def test_a_slow_older_answer_does_not_replace_a_newer_cached_token() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/unauthorized"):
            return httpx.Response(200, json=_grant_body("newer", expires_in=3600))
        await asyncio.sleep(0.1)
        return httpx.Response(200, json=_grant_body("older", expires_in=1800))

    async with _client(handler) as client:
        slow = asyncio.create_task(client.get_grant(ORG))
        await asyncio.sleep(0.01)
        newer = await client.report_unauthorized(ORG, AccessGrant(ORG, "9130000000001", "x", datetime.now(UTC)))
        await slow
        assert (await client.get_grant(ORG)) is newer


@pytest.mark.parametrize("error", ["needs_reconnect", "disconnected", "not_connected"])
async def test_must_reconnect_becomes_auth_lost_and_drops_the_cache(error: str) -> None:
    lost = False

    async def handler(_: httpx.Request) -> httpx.Response:
        if lost:
            body = {"error": error, "message": "reconnect QuickBooks", "status": None}
            return httpx.Response(409, json=body)
        return httpx.Response(200, json=_grant_body("before"))

    async with _client(handler) as client:
        grant = await client.get_grant(ORG)
        lost = True
        with pytest.raises(QboAuthLostError, match=error):
            await client.report_unauthorized(ORG, grant)
        with pytest.raises(QboAuthLostError):
            await client.get_grant(ORG)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (httpx.Response(503, json={"error": "refresh_unavailable", "message": "later"}), QboTransportError),
        (httpx.Response(502, text="<html>bad gateway</html>"), QboTransportError),
        (httpx.Response(200, text="garbled"), QboTransportError),
        (httpx.Response(200, json=_grant_body("t", organization_id=uuid.uuid4())), QboRequestError),
        (httpx.Response(401, json={"error": "unauthenticated", "message": "no"}), QboRequestError),
        (httpx.Response(409, json={"error": "bad_request", "message": "?"}), QboRequestError),
    ],
)
async def test_other_answers_map_to_the_qbo_client_errors(answer: httpx.Response, error: type[Exception]) -> None:
    async def handler(_: httpx.Request) -> httpx.Response:
        return answer

    async with _client(handler) as client:
        with pytest.raises(error):
            await client.get_grant(ORG)


@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
async def test_an_unreachable_token_manager_is_a_transport_error(failure: Exception) -> None:
    async def handler(_: httpx.Request) -> httpx.Response:
        raise failure

    async with _client(handler) as client:
        with pytest.raises(QboTransportError):
            await client.get_grant(ORG)


async def _never(_: httpx.Request) -> httpx.Response:
    raise AssertionError("no request expected")
