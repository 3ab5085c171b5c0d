"""Every exception httpx can raise is translated; nothing from httpx reaches a service."""

from __future__ import annotations

import inspect

import httpx
import pytest

from qbsync.qbo import QboError, QboRequestError, QboTransportError
from tests.qbo_client.fakes import ORG, ScriptedQbo, always_raise, make_client


def httpx_exception_classes() -> list[type[Exception]]:
    found = {
        obj
        for _, obj in inspect.getmembers(httpx)
        if inspect.isclass(obj) and issubclass(obj, Exception) and obj.__module__.startswith("httpx")
    }
    return sorted(found, key=lambda cls: cls.__name__)


def instantiate(cls: type[Exception]) -> Exception:
    request = httpx.Request("GET", "http://qbo.test/")
    if issubclass(cls, httpx.HTTPStatusError):
        return cls("boom", request=request, response=httpx.Response(500, request=request))
    if issubclass(cls, httpx.RequestError):
        return cls("boom", request=request)
    if cls in (httpx.StreamConsumed, httpx.StreamClosed, httpx.ResponseNotRead, httpx.RequestNotRead):
        return cls()
    return cls("boom")


# Network faults and garbled bytes: the request may have reached QBO, so the caller may retry (same requestid).
TRANSPORT = {
    httpx.TransportError, httpx.TimeoutException, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.WriteTimeout,
    httpx.PoolTimeout, httpx.NetworkError, httpx.ConnectError, httpx.ReadError, httpx.WriteError, httpx.CloseError,
    httpx.ProtocolError, httpx.LocalProtocolError, httpx.RemoteProtocolError, httpx.ProxyError,
    httpx.UnsupportedProtocol, httpx.DecodingError,
}  # fmt: skip


def test_the_walk_finds_the_whole_httpx_hierarchy() -> None:
    names = {cls.__name__ for cls in httpx_exception_classes()}
    assert {"HTTPError", "ReadTimeout", "RemoteProtocolError", "InvalidURL", "StreamClosed", "CookieConflict"} <= names
    assert len(names) >= 28  # httpx 0.28 exports 28 exception classes


@pytest.mark.parametrize("exc_class", httpx_exception_classes(), ids=lambda cls: cls.__name__)
async def test_every_httpx_exception_is_translated(exc_class: type[Exception]) -> None:
    qbo = ScriptedQbo(default=always_raise(lambda: instantiate(exc_class)))
    client, _ = make_client(qbo, read_max_attempts=1)
    async with client:
        with pytest.raises(QboError) as info:
            await client.company(ORG).read("Customer", "1")
    expected = QboTransportError if exc_class in TRANSPORT else QboRequestError
    assert type(info.value) is expected
    assert isinstance(info.value.__cause__, exc_class)
    assert exc_class.__name__ in str(info.value)


async def test_transport_errors_on_a_read_are_retried_then_raised() -> None:
    qbo = ScriptedQbo(default=always_raise(lambda: httpx.ConnectError("refused")))
    client, clock = make_client(qbo, read_max_attempts=3)
    async with client:
        with pytest.raises(QboTransportError):
            await client.company(ORG).read("Customer", "1")
    assert len(qbo.requests) == 3
    assert clock.sleeps == [0.5, 1.0]  # jitter pinned to identity: 0.5 x 2^(n-1)
