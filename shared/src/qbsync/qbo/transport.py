"""The one place where httpx is called and its exceptions become :class:`QboError` subclasses.

Nothing from httpx may leak into services: a timeout, a refused connection, a connection dropped after QBO applied a
write, a garbled compressed body - all become :class:`QboTransportError` (retryable: the caller retries with the
same ``requestid``). What httpx raises for a malformed request or stream misuse is a bug, not a network fault, and
becomes :class:`QboRequestError`. ``tests/qbo_client/test_transport.py`` walks every exception class httpx exports,
so a new one in a future httpx fails a test until it is placed here.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from qbsync.qbo.errors import QboRequestError, QboTransportError

__all__ = ["send"]

# Failures of the network or of the bytes on it: the request may or may not have reached QBO.
_TRANSPORT_FAILURES: tuple[type[Exception], ...] = (httpx.TransportError, httpx.DecodingError)
# Everything else httpx can raise while building or sending a request: a defect on our side.
_REQUEST_FAILURES: tuple[type[Exception], ...] = (
    httpx.HTTPError,
    httpx.InvalidURL,
    httpx.CookieConflict,
    httpx.StreamError,
)


async def send(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    content: bytes | None = None,
) -> httpx.Response:
    """Send one request and read its whole body, translating every httpx exception."""
    try:
        request = http.build_request(method, url, params=params, headers=headers, content=content)
        return await http.send(request)
    except _TRANSPORT_FAILURES as exc:
        raise QboTransportError(_describe(exc)) from exc
    except _REQUEST_FAILURES as exc:
        raise QboRequestError(_describe(exc)) from exc


def _describe(exc: Exception) -> str:
    # httpx messages name the failure ("timed out", "[Errno 111] Connection refused"); they never hold headers,
    # so the bearer token cannot leak through them.
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
