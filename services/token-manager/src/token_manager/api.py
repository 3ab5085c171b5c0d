"""token-manager's HTTP API (wire contract: ``qbsync.tokens.api``), served beside ``/health`` and ``/metrics``.

Everything except the OAuth callback requires ``Authorization: Bearer <service token>`` (compared in constant time;
401 otherwise). ``/connect/{org}`` is authenticated too: whoever may start a connect decides which QuickBooks company
an organization's data flows to, so Batchly's backend (or ``qbsync connect``) calls it with the credential and sends
the person's browser to the returned location. The callback is protected by its signed, single-use state.

Responses carrying a token are ``Cache-Control: no-store``; no response carries a refresh token.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from qbsync.tokens.api import (
    ConnectionListBody,
    ConnectionStatus,
    ErrorBody,
    ErrorCode,
    TokenBody,
    UnauthorizedReport,
)
from token_manager.clock import Clock
from token_manager.connections import ConnectError, ConnectionService
from token_manager.pages import PAGE_HEADERS, connected_page, error_page
from token_manager.refresh import ActiveToken, ConnectionProblem, Refresher, RefreshUnavailable

__all__ = ["TokenApi"]

log = logging.getLogger("token_manager.api")

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_RETRY_AFTER_SECONDS = 5

Endpoint = Callable[[Request], Awaitable[Response]]


def _error(
    status: int,
    code: ErrorCode,
    message: str,
    *,
    state: ConnectionStatus | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=code, message=message, status=state)
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers={**_NO_STORE, **(headers or {})})


def _problem(problem: ConnectionProblem) -> JSONResponse:
    if isinstance(problem, RefreshUnavailable):
        return _error(503, "refresh_unavailable", problem.message, headers={"Retry-After": str(_RETRY_AFTER_SECONDS)})
    return _error(409, problem.code, problem.message, state=problem.status)


class TokenApi:
    """The routes, bound to the services they call."""

    def __init__(
        self, *, connections: ConnectionService, refresher: Refresher, service_token: str, clock: Clock
    ) -> None:
        if not service_token:
            raise ValueError("a service token is required")
        self._connections = connections
        self._refresher = refresher
        self._expected = service_token.encode("utf-8")
        self._clock = clock

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/connect/{organization_id:uuid}", self._guarded(self.connect), methods=["GET"]),
            Route("/oauth/callback", self.callback, methods=["GET"]),
            Route("/v1/organizations/{organization_id:uuid}/token", self._guarded(self.token), methods=["GET"]),
            Route(
                "/v1/organizations/{organization_id:uuid}/token/unauthorized",
                self._guarded(self.unauthorized),
                methods=["POST"],
            ),
            Route(
                "/v1/organizations/{organization_id:uuid}/connection", self._guarded(self.connection), methods=["GET"]
            ),
            Route(
                "/v1/organizations/{organization_id:uuid}/disconnect", self._guarded(self.disconnect), methods=["POST"]
            ),
            Route("/v1/connections", self._guarded(self.connections), methods=["GET"]),
        ]

    # ---- authentication ------------------------------------------------------------------------------------------
    def _authenticated(self, request: Request) -> bool:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        presented = credential.strip().encode("utf-8")
        return scheme.lower() == "bearer" and hmac.compare_digest(presented, self._expected)

    def _guarded(self, endpoint: Endpoint) -> Endpoint:
        async def guarded(request: Request) -> Response:
            if not self._authenticated(request):
                return _error(
                    401,
                    "unauthenticated",
                    "a valid service credential is required",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            try:
                return await endpoint(request)
            except ConnectionProblem as problem:
                return _problem(problem)
            except DBAPIError as exc:
                log.warning("token store unavailable: %s", type(exc).__name__)
                return _error(
                    503,
                    "refresh_unavailable",
                    "the token store is unavailable",
                    headers={"Retry-After": str(_RETRY_AFTER_SECONDS)},
                )

        return guarded

    # ---- connect flow --------------------------------------------------------------------------------------------
    async def connect(self, request: Request) -> Response:
        organization_id: UUID = request.path_params["organization_id"]
        try:
            url = await self._connections.start_connect(organization_id)
        except ConnectError as exc:
            return _error(502, "intuit_unavailable", exc.message)
        return RedirectResponse(url, status_code=302, headers=PAGE_HEADERS)

    async def callback(self, request: Request) -> Response:
        params = request.query_params
        wants_json = "application/json" in request.headers.get("accept", "")
        try:
            result = await self._connections.complete_connect(
                state=params.get("state"),
                code=params.get("code"),
                realm_id=params.get("realmId"),
                error=params.get("error"),
            )
        except ConnectError as exc:
            if wants_json:
                failure = {"error": exc.code, "message": exc.message, "reason": exc.detail}
                return JSONResponse(failure, status_code=exc.http_status, headers=PAGE_HEADERS)
            return error_page(status_code=exc.http_status, message=exc.message)
        except DBAPIError as exc:
            log.warning("connect failed: the token store is unavailable (%s)", type(exc).__name__)
            return error_page(status_code=503, message="The service is briefly unavailable; connect again.")
        if wants_json:
            body: dict[str, Any] = {
                "status": "connected",
                "organization_id": str(result.organization_id),
                "realm_id": result.realm_id,
                "company_name": result.company_name,
                "reconnected": result.reconnected,
            }
            return JSONResponse(body, headers=PAGE_HEADERS)
        return connected_page(
            realm_id=result.realm_id, company_name=result.company_name, reconnected=result.reconnected
        )

    # ---- tokens --------------------------------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        token = await self._refresher.current_token(request.path_params["organization_id"])
        return self._token_response(token)

    async def unauthorized(self, request: Request) -> Response:
        try:
            report = UnauthorizedReport.model_validate_json(await request.body())
        except ValidationError:
            return _error(400, "bad_request", 'expected {"fingerprint": "<32 lowercase hex characters>"}')
        token = await self._refresher.after_unauthorized(request.path_params["organization_id"], report.fingerprint)
        return self._token_response(token)

    def _token_response(self, token: ActiveToken) -> Response:
        expires_in = max(0, int((token.expires_at - self._clock()).total_seconds()))
        body = TokenBody(
            organization_id=token.organization_id,
            realm_id=token.realm_id,
            access_token=token.access_token,
            expires_at=token.expires_at,
            expires_in=expires_in,
        )
        return JSONResponse(body.model_dump(mode="json"), headers=_NO_STORE)

    # ---- status --------------------------------------------------------------------------------------------------
    async def connection(self, request: Request) -> Response:
        view = await self._connections.status(request.path_params["organization_id"])
        if view is None:
            return _error(404, "not_found", "this organization has never connected QuickBooks")
        return JSONResponse(view.model_dump(mode="json"), headers=_NO_STORE)

    async def disconnect(self, request: Request) -> Response:
        result = await self._connections.disconnect(request.path_params["organization_id"])
        if result is None:
            return _error(404, "not_found", "this organization has never connected QuickBooks")
        return JSONResponse(result.model_dump(mode="json"), headers=_NO_STORE)

    async def connections(self, request: Request) -> Response:
        body = ConnectionListBody(connections=await self._connections.all())
        return JSONResponse(body.model_dump(mode="json"), headers=_NO_STORE)
