"""HTTP responses shaped as Intuit's services send them, plus the "connection dropped" response.

:class:`DroppedResponse` starts a response (status line and headers, including the full ``Content-Length``) and
then fails. Under uvicorn the server closes the socket mid-response, so a client sees a transport error
("peer closed connection without sending complete message body"). In-process, through ``httpx.ASGITransport``,
the raised :class:`ConnectionDropped` *is* an ``httpx.RemoteProtocolError``, so the same client code path runs.
"""

from __future__ import annotations

import json
from datetime import datetime, tzinfo
from typing import Any

import httpx
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send

from qbo_emulator import errors
from qbo_emulator.clock import format_response_time
from qbo_emulator.config import LimitsConfig
from qbo_emulator.errors import QboFault

__all__ = [
    "JSON_TYPE",
    "ConnectionDropped",
    "DroppedResponse",
    "fault_response",
    "forbidden_response",
    "html_error_response",
    "qbo_json",
    "system_fault_response",
    "throttled_response",
    "unauthorized_response",
]

JSON_TYPE = "application/json;charset=UTF-8"


def dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def qbo_json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response with QBO's content type."""
    return Response(dumps(body), status_code=status, media_type=JSON_TYPE, headers=headers)


def fault_response(fault: QboFault, now: datetime, zone: tzinfo) -> Response:
    """The ``{"Fault": …, "time": …}`` wrapper at the fault's HTTP status (400 for validation)."""
    return qbo_json({"Fault": fault.fault(), "time": format_response_time(now, zone)}, fault.status)


def system_fault_response(now: datetime, zone: tzinfo, status: int = 500) -> Response:
    """A SystemFault (code 10000), what an internal failure looks like from QBO."""
    fault = QboFault(
        "10000",
        "An application error has occurred while processing your request",
        "System Failure Error: An unexpected error occurred while accessing or saving your data. Please wait "
        "a few minutes and try again. If the problem persists, contact customer support.",
        status=status,
        fault_type="SystemFault",
    )
    return fault_response(fault, now, zone)


def unauthorized_response(now: datetime, detail: str | None) -> Response:
    """401 with the gateway's JSON body and a ``WWW-Authenticate`` challenge."""
    challenge = 'Bearer realm="Intuit", error="invalid_token"'
    return qbo_json(errors.auth_fault_body(now, detail), 401, {"WWW-Authenticate": challenge})


def forbidden_response(now: datetime) -> Response:
    return qbo_json(errors.forbidden_fault_body(now), 403)


def throttled_response(now: datetime, zone: tzinfo, limits: LimitsConfig) -> Response:
    """429 in the configured body format (XML by default, as observed)."""
    headers = {"Retry-After": str(limits.retry_after_s)} if limits.retry_after_s is not None else None
    time_text = format_response_time(now, zone)
    if limits.throttle_body == "json":
        return qbo_json(errors.throttle_json_body(time_text), 429, headers)
    return Response(
        errors.throttle_xml_body(time_text),
        status_code=429,
        media_type="application/xml;charset=UTF-8",
        headers=headers,
    )


def html_error_response(status: int) -> Response:
    return HTMLResponse(errors.html_error_page(status), status_code=status)


class ConnectionDropped(httpx.RemoteProtocolError):
    """The peer went away mid-response (raised by :class:`DroppedResponse`)."""

    def __init__(self) -> None:
        super().__init__("Server disconnected without sending a complete response.")


class DroppedResponse(Response):
    """Send the status line and headers of ``inner`` (or an empty 200), then cut the connection."""

    def __init__(self, inner: Response | None = None) -> None:
        # A non-empty body, so the advertised Content-Length is never met.
        inner = inner or Response(b"{}", media_type=JSON_TYPE)
        super().__init__(inner.body, status_code=inner.status_code, media_type=inner.media_type)
        self.raw_headers = list(inner.raw_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        raise ConnectionDropped
