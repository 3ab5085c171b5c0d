"""In-place retry, requestid stability, the 401 refresh hook, and that tokens never leak."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from uuid import uuid4

import httpx
import pytest
from prometheus_client import REGISTRY

from qbsync.qbo import (
    AccessGrant,
    QboAuthenticationError,
    QboAuthLostError,
    QboDuplicateNameError,
    QboServerError,
    QboThrottledError,
    QboTransportError,
    StaticTokenProvider,
)
from tests.qbo_client.fakes import (
    ORG,
    REALM,
    RefreshingTokens,
    ScriptedQbo,
    always_raise,
    fault,
    json_response,
    make_client,
)

CUSTOMER = {"Customer": {"Id": "7", "SyncToken": "0", "DisplayName": "Ada"}, "time": "2024-05-01T10:00:00-07:00"}
UNAUTHORIZED = json_response(401, {"fault": {"error": [{"message": "AuthenticationFailed", "code": "3200"}]}})


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_write_retried_after_dropped_connection_keeps_the_same_requestid() -> None:
    qbo = ScriptedQbo(
        [
            httpx.RemoteProtocolError("server disconnected without sending a response"),
            httpx.ReadTimeout("timed out"),
            json_response(200, CUSTOMER),
        ]
    )
    client, _ = make_client(qbo)
    async with client:
        created = await client.company(ORG).create("Customer", {"DisplayName": "Ada"}, request_id="evt-1-create")
    assert created["Id"] == "7"
    assert [r.params["requestid"] for r in qbo.requests] == ["evt-1-create"] * 3
    assert len({r.body for r in qbo.requests}) == 1


async def test_write_transport_retries_are_bounded() -> None:
    qbo = ScriptedQbo(default=always_raise(lambda: httpx.ConnectError("refused")))
    client, _ = make_client(qbo, write_max_attempts=2)
    async with client:
        with pytest.raises(QboTransportError):
            await client.company(ORG).create("Customer", {"DisplayName": "Ada"}, request_id="r1")
    assert len(qbo.requests) == 2


@pytest.mark.parametrize(
    "reply",
    [
        json_response(429, fault("3001", "ThrottleExceeded")),
        json_response(500, fault("10000", "An application error has occurred")),
        httpx.Response(503, text="<html>Service Unavailable</html>"),
    ],
    ids=["429", "500", "503-html"],
)
async def test_write_is_not_retried_in_place_on_429_or_5xx(reply: httpx.Response) -> None:
    qbo = ScriptedQbo([reply])
    client, _clock = make_client(qbo)
    async with client:
        with pytest.raises((QboThrottledError, QboServerError)) as info:
            await client.company(ORG).create("Customer", {"DisplayName": "Ada"}, request_id="r1")
    assert info.value.retryable  # the service's retry ladder takes it from here
    assert len(qbo.requests) == 1


async def test_read_retries_429_honouring_retry_after_then_succeeds() -> None:
    qbo = ScriptedQbo(
        [
            json_response(429, fault("3001"), headers={"Retry-After": "7"}),
            httpx.Response(502, text="<html>Bad Gateway</html>"),
            json_response(200, CUSTOMER),
        ]
    )
    client, clock = make_client(qbo)
    before = sample("qbsync_qbo_retries_total", operation="read", error="QboThrottledError")
    async with client:
        customer = await client.company(ORG).read("Customer", "7")
    assert customer["DisplayName"] == "Ada"
    assert len(qbo.requests) == 3
    assert clock.sleeps[0] == 7.0  # the server's hint, not the 0.5 s backoff
    assert sample("qbsync_qbo_retries_total", operation="read", error="QboThrottledError") == before + 1


async def test_a_429_pauses_the_whole_company_budget() -> None:
    qbo = ScriptedQbo(
        [json_response(429, fault("3001"), headers={"Retry-After": "30"})],
        default=lambda r: json_response(200, CUSTOMER),
    )
    client, clock = make_client(qbo)
    async with client:
        company = client.company(ORG)
        with pytest.raises(QboThrottledError):
            await company.create("Customer", {"DisplayName": "Ada"}, request_id="r1")
        started = clock.now
        await company.read("Customer", "7")  # another request to the same company waits out the pause
    assert clock.now - started >= 30.0


async def test_read_retries_are_bounded_and_the_last_error_is_raised() -> None:
    qbo = ScriptedQbo(default=lambda request: json_response(500, fault("10000")))
    client, clock = make_client(qbo, read_max_attempts=4, backoff_max_s=1.5)
    async with client:
        with pytest.raises(QboServerError):
            await client.company(ORG).read("Customer", "7")
    assert len(qbo.requests) == 4
    assert clock.sleeps == [0.5, 1.0, 1.5]  # exponential, capped


async def test_401_refreshes_once_and_retries_with_the_new_token() -> None:
    tokens = RefreshingTokens(tokens=("old-token", "new-token"))
    qbo = ScriptedQbo([UNAUTHORIZED, json_response(200, CUSTOMER)])
    client, _ = make_client(qbo, tokens=tokens)
    async with client:
        await client.company(ORG).create("Customer", {"DisplayName": "Ada"}, request_id="r1")
    assert [r.headers["authorization"] for r in qbo.requests] == ["Bearer old-token", "Bearer new-token"]
    assert [g.access_token for g in tokens.reports] == ["old-token"]
    assert [r.params["requestid"] for r in qbo.requests] == ["r1", "r1"]


async def test_second_401_after_refresh_is_raised() -> None:
    tokens = RefreshingTokens(tokens=("t1", "t2", "t3"))
    qbo = ScriptedQbo([UNAUTHORIZED, UNAUTHORIZED])
    client, _ = make_client(qbo, tokens=tokens)
    async with client:
        with pytest.raises(QboAuthenticationError) as info:
            await client.company(ORG).read("Customer", "7")
    assert info.value.code == "3200"
    assert len(qbo.requests) == 2
    assert len(tokens.reports) == 1  # exactly one refresh


async def test_refresh_failure_means_the_connection_is_lost() -> None:
    qbo = ScriptedQbo([UNAUTHORIZED])
    client, _ = make_client(qbo, tokens=RefreshingTokens(tokens=("only",)))
    async with client:
        with pytest.raises(QboAuthLostError):
            await client.company(ORG).read("Customer", "7")
    assert len(qbo.requests) == 1


async def test_static_provider_cannot_refresh_and_an_unknown_org_is_lost() -> None:
    qbo = ScriptedQbo([UNAUTHORIZED])
    client, _ = make_client(qbo, tokens=StaticTokenProvider({ORG: (REALM, "static-token")}))
    async with client:
        with pytest.raises(QboAuthLostError):
            await client.company(ORG).read("Customer", "1")
        with pytest.raises(QboAuthLostError):
            await client.company(uuid4()).read("Customer", "1")
    assert len(qbo.requests) == 1  # the unknown organization never reached QBO


async def test_tokens_never_appear_in_reprs_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    secret = "eyJsecret-access-token-value"
    tokens = RefreshingTokens(tokens=(secret,))
    grant = await tokens.get_grant(ORG)
    assert secret not in repr(grant)
    assert secret not in str(grant)
    qbo = ScriptedQbo(
        [httpx.ConnectError("refused"), json_response(500, fault("10000")), UNAUTHORIZED],
    )
    client, _ = make_client(qbo, tokens=tokens, read_max_attempts=3)
    caplog.set_level(logging.DEBUG)
    async with client:
        with pytest.raises(QboAuthLostError) as info:
            await client.company(ORG).read("Customer", "7")
    assert qbo.requests[0].headers["authorization"] == f"Bearer {secret}"  # it was sent...
    texts = [caplog.text, str(info.value), repr(info.value)]
    texts += [str(e) for e in (info.value.__context__, info.value.__cause__) if e is not None]
    assert all(secret not in text for text in texts)  # ...and never written anywhere
    assert all(secret not in "".join(str(s) for s in metric.samples) for metric in REGISTRY.collect())


async def test_grant_rejects_a_realm_that_could_escape_the_url_path() -> None:
    with pytest.raises(ValueError):
        AccessGrant(ORG, "123/../456", "token", datetime.now(UTC))


async def test_request_metrics_are_labelled_without_ids() -> None:
    qbo = ScriptedQbo([json_response(400, fault("6240", "Duplicate Name Exists Error"))])
    client, _ = make_client(qbo)
    before = sample("qbsync_qbo_requests_total", operation="create", status="400", error="QboDuplicateNameError")
    waits_before = sample("qbsync_qbo_throttle_wait_seconds_count", kind="request")
    async with client:
        with pytest.raises(QboDuplicateNameError):
            await client.company(ORG).create("Customer", {"DisplayName": "Ada"}, request_id="r1")
    after = sample("qbsync_qbo_requests_total", operation="create", status="400", error="QboDuplicateNameError")
    assert after == before + 1
    assert sample("qbsync_qbo_throttle_wait_seconds_count", kind="request") == waits_before + 1
    for metric in REGISTRY.collect():
        if metric.name.startswith("qbsync_qbo_"):
            for s in metric.samples:
                assert REALM not in s.labels.values()
                assert str(ORG) not in s.labels.values()
