"""The wire contract of token-manager's HTTP API, shared by the server and :class:`TokenManagerClient`.

Every request carries ``Authorization: Bearer <service token>``. Paths (``{org}`` is the organization UUID):

===========================================  ==========================================================
``GET  /v1/organizations/{org}/token``       a usable access token (refreshed first when near expiry)
``POST /v1/organizations/{org}/token/unauthorized``  "QBO answered 401 to the token with this fingerprint"
``GET  /v1/organizations/{org}/connection``  status, realm, expiries, last refresh, last error
``POST /v1/organizations/{org}/disconnect``  revoke at Intuit, status ``disconnected``
``GET  /v1/connections``                     every organization's status
``GET  /connect/{org}``                      302 to Intuit's consent page (signed, single-use ``state``)
===========================================  ==========================================================

A token request for an organization that must (re)connect answers **409** with an :class:`ErrorBody` whose
``error`` is one of :data:`RECONNECT_ERRORS`; a refresh that failed for a passing reason (Intuit unreachable) while
the access token has already expired answers **503** ``refresh_unavailable``. No response ever carries a refresh
token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "RECONNECT_ERRORS",
    "ConnectionBody",
    "ConnectionListBody",
    "ConnectionStatus",
    "DisconnectBody",
    "ErrorBody",
    "ErrorCode",
    "TokenBody",
    "UnauthorizedReport",
    "connect_path",
    "connection_path",
    "connections_path",
    "disconnect_path",
    "token_path",
    "unauthorized_path",
]

ConnectionStatus = Literal["connected", "needs_reconnect", "disconnected"]
ErrorCode = Literal[
    "unauthenticated",
    "bad_request",
    "not_found",
    "not_connected",
    "needs_reconnect",
    "disconnected",
    "refresh_unavailable",
    "intuit_unavailable",
]
#: Token-request errors that mean "this organization must connect QuickBooks again" (sync services park).
RECONNECT_ERRORS: frozenset[str] = frozenset({"not_connected", "needs_reconnect", "disconnected"})


class _Response(BaseModel):
    # Clients ignore fields they do not know yet, so the server can add some without breaking older services.
    model_config = ConfigDict(extra="ignore", frozen=True)


class TokenBody(_Response):
    """A usable access token. ``expires_in`` lets a client cache by its own clock (no cross-host clock skew)."""

    organization_id: UUID
    realm_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    access_token: str = Field(min_length=1, repr=False)
    expires_at: AwareDatetime
    expires_in: int = Field(ge=0)


class UnauthorizedReport(BaseModel):
    """Body of a 401 report: the failing token's fingerprint (``qbsync.tokens.token_fingerprint``), never the token."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fingerprint: str = Field(pattern=r"^[0-9a-f]{32}$")


class ConnectionBody(_Response):
    """One organization's QuickBooks connection, as operators and dashboards see it. Never a token value."""

    organization_id: UUID
    status: ConnectionStatus
    realm_id: str
    environment: str
    company_name: str | None = None
    connected_at: datetime
    status_changed_at: datetime
    access_token_expires_at: datetime | None = None
    refresh_token_expires_at: datetime | None = None
    #: Intuit's 5-year cap (``x_refresh_token_hard_expires_in``), when Intuit sent one.
    refresh_token_hard_expires_at: datetime | None = None
    #: The refresh token (rolling or hard expiry) ends within ``refresh_token_warning_days``.
    refresh_token_expiring_soon: bool = False
    last_refresh_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_refresh_failures: int = 0


class ConnectionListBody(_Response):
    connections: list[ConnectionBody]


class DisconnectBody(_Response):
    organization_id: UUID
    status: ConnectionStatus
    #: False when Intuit could not be reached: the tokens are forgotten here anyway and expire at Intuit.
    revoked_at_intuit: bool


class ErrorBody(_Response):
    error: ErrorCode
    message: str
    status: ConnectionStatus | None = None


def token_path(organization_id: UUID) -> str:
    return f"/v1/organizations/{organization_id}/token"


def unauthorized_path(organization_id: UUID) -> str:
    return f"/v1/organizations/{organization_id}/token/unauthorized"


def connection_path(organization_id: UUID) -> str:
    return f"/v1/organizations/{organization_id}/connection"


def disconnect_path(organization_id: UUID) -> str:
    return f"/v1/organizations/{organization_id}/disconnect"


def connections_path() -> str:
    return "/v1/connections"


def connect_path(organization_id: UUID) -> str:
    return f"/connect/{organization_id}"
