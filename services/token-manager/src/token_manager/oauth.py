"""Intuit OAuth 2.0 over httpx: discovery, authorization URL, code exchange, refresh, revoke (facts §1).

Errors::

    OAuthError                    every failure; never carries a token, a code or a secret
    ├── OAuthGrantError           400 invalid_grant: the code or refresh token is dead (expired, revoked,
    │                             superseded by rotation) — the connection needs a reconnect
    ├── OAuthClientError          401 / invalid_client / unauthorized_client: our app credentials are wrong
    ├── OAuthUnavailableError     transport failure, timeout, 5xx, 429, or an unreadable answer — try again later
    └── OAuthProtocolError        any other refusal (invalid_request, unsupported_grant_type, ...): a bug or
                                  a misconfiguration, not a property of the connection

``_raise_for`` is the one place a response becomes an error and ``_send`` the one place httpx exceptions are
translated. The token request asks for ``x_refresh_token_hard_expires_in`` with Intuit's opt-in header. Expiries are
computed from the moment the request was *sent*: Intuit starts the lifetimes later, so ours are never too long.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from qbsync.settings import Settings
from token_manager.clock import Clock

__all__ = [
    "Discovery",
    "IntuitOAuthClient",
    "OAuthClientError",
    "OAuthError",
    "OAuthGrantError",
    "OAuthProtocolError",
    "OAuthUnavailableError",
    "TokenSet",
    "discovery_url_for",
]

log = logging.getLogger("token_manager.oauth")

DISCOVERY_URLS = {
    "production": "https://developer.intuit.com/.well-known/openid_configuration/",
    "sandbox": "https://developer.intuit.com/.well-known/openid_sandbox_configuration/",
}
_HARD_EXPIRY_HEADER = "x-include-refresh-token-hard-expires-in"


class OAuthError(Exception):
    """Base of every OAuth failure. ``code`` is Intuit's ``error`` (or ours, e.g. ``transport``)."""

    def __init__(self, message: str, *, code: str, status: int | None = None, intuit_tid: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.intuit_tid = intuit_tid

    def __str__(self) -> str:
        facts = ", ".join(f"{k}={v}" for k, v in (("status", self.status), ("intuit_tid", self.intuit_tid)) if v)
        return f"{self.message} ({facts})" if facts else self.message


class OAuthGrantError(OAuthError):
    """``invalid_grant``: the authorization code or refresh token is no longer valid."""


class OAuthClientError(OAuthError):
    """Intuit does not accept our client id / secret."""


class OAuthUnavailableError(OAuthError):
    """Intuit could not be reached or answered with a passing failure."""


class OAuthProtocolError(OAuthError):
    """Intuit refused the request for a reason that is not about the connection."""


@dataclass(frozen=True, slots=True)
class Discovery:
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str


@dataclass(frozen=True, slots=True)
class TokenSet:
    """A token response with absolute expiries. Token values never appear in ``repr``."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_expires_at: datetime
    refresh_expires_at: datetime | None
    hard_expires_at: datetime | None

    _FIELDS: ClassVar[tuple[str, ...]] = ("access_token", "refresh_token", "expires_in")

    @classmethod
    def from_response(cls, body: Any, *, issued_at: datetime) -> TokenSet:
        if not isinstance(body, dict) or any(not body.get(name) for name in cls._FIELDS):
            raise OAuthUnavailableError("Intuit's token response lacks a token or its lifetime", code="bad_response")
        access, refresh = body["access_token"], body["refresh_token"]
        if not isinstance(access, str) or not isinstance(refresh, str):
            raise OAuthUnavailableError("Intuit's token response has non-text tokens", code="bad_response")
        return cls(
            access_token=access,
            refresh_token=refresh,
            access_expires_at=issued_at + _seconds(body["expires_in"]),
            refresh_expires_at=_maybe(body.get("x_refresh_token_expires_in"), issued_at),
            hard_expires_at=_maybe(body.get("x_refresh_token_hard_expires_in"), issued_at),
        )


def _seconds(value: Any) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise OAuthUnavailableError("Intuit sent a lifetime that is not a number", code="bad_response")
    try:
        seconds = float(value)
    except ValueError:
        raise OAuthUnavailableError("Intuit sent a lifetime that is not a number", code="bad_response") from None
    if not 0 <= seconds < 10 * 365 * 86_400:
        raise OAuthUnavailableError("Intuit sent an implausible token lifetime", code="bad_response")
    return timedelta(seconds=seconds)


def _maybe(value: Any, issued_at: datetime) -> datetime | None:
    return None if value is None else issued_at + _seconds(value)


def discovery_url_for(settings: Settings) -> str:
    """The configured discovery URL, else Intuit's for production/sandbox, else the emulator's (QBO base URL)."""
    tm = settings.token_manager
    if tm.discovery_url:
        return tm.discovery_url
    if tm.oauth_environment == "emulator":
        return f"{settings.qbo.resolved_base_url}/.well-known/openid_configuration"
    return DISCOVERY_URLS[tm.oauth_environment]


class IntuitOAuthClient:
    """One per process. ``transport`` lets tests route it (``ASGITransport`` / ``MockTransport``)."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        scopes: tuple[str, ...],
        discovery_url: str,
        clock: Clock,
        timeout_seconds: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.redirect_uri = redirect_uri
        self._client_id = client_id
        self._auth = httpx.BasicAuth(client_id, client_secret)
        self._scopes = " ".join(scopes)
        self._discovery_url = discovery_url
        self._clock = clock
        self._discovery: Discovery | None = None
        self._discovery_lock = asyncio.Lock()
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds)),
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": "qbsync-token-manager/0.1"},
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, clock: Clock, transport: httpx.AsyncBaseTransport | None = None
    ) -> IntuitOAuthClient:
        tm = settings.token_manager
        return cls(
            client_id=tm.client_id,
            client_secret=tm.client_secret.get_secret_value(),
            redirect_uri=tm.redirect_uri,
            scopes=tm.scopes,
            discovery_url=discovery_url_for(settings),
            clock=clock,
            timeout_seconds=tm.oauth_timeout_seconds,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------------------------------------ endpoints
    async def discovery(self) -> Discovery:
        """Intuit's discovery document, fetched once and kept (fetched again after a failure)."""
        if self._discovery is not None:
            return self._discovery
        async with self._discovery_lock:
            if self._discovery is None:
                response = await self._send("GET", self._discovery_url)
                _raise_for(response)
                body = _json(response)
                try:
                    self._discovery = Discovery(
                        authorization_endpoint=str(body["authorization_endpoint"]),
                        token_endpoint=str(body["token_endpoint"]),
                        revocation_endpoint=str(body["revocation_endpoint"]),
                    )
                except (KeyError, TypeError):
                    raise OAuthUnavailableError(
                        "Intuit's discovery document is incomplete", code="bad_response"
                    ) from None
            return self._discovery

    async def authorization_url(self, state: str) -> str:
        endpoint = (await self.discovery()).authorization_endpoint
        params = {
            "client_id": self._client_id,
            "response_type": "code",
            "scope": self._scopes,
            "redirect_uri": self.redirect_uri,
            "state": state,
        }
        parts = urlsplit(endpoint)
        query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))

    async def exchange_code(self, code: str) -> TokenSet:
        """``authorization_code`` grant."""
        return await self._token({"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri})

    async def refresh(self, refresh_token: str) -> TokenSet:
        """``refresh_token`` grant. The answer's refresh token may be a new value (rotation): always keep it."""
        return await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def revoke(self, token: str) -> None:
        """Revoke the grant a token belongs to (Intuit revokes the whole connection)."""
        endpoint = (await self.discovery()).revocation_endpoint
        response = await self._send("POST", endpoint, json={"token": token}, auth=self._auth)
        _raise_for(response)

    async def _token(self, form: dict[str, str]) -> TokenSet:
        endpoint = (await self.discovery()).token_endpoint
        issued_at = self._clock()
        response = await self._send(
            "POST",
            endpoint,
            content=urlencode(form).encode("ascii"),
            headers={"Content-Type": "application/x-www-form-urlencoded", _HARD_EXPIRY_HEADER: "true"},
            auth=self._auth,
        )
        _raise_for(response)
        return TokenSet.from_response(_json(response), issued_at=issued_at)

    async def _send(self, method: str, url: str, **options: Any) -> httpx.Response:
        """The one place httpx exceptions are translated (messages name the exception type, never the request)."""
        try:
            return await self._http.request(method, url, **options)
        except httpx.TimeoutException as exc:
            raise OAuthUnavailableError(f"Intuit OAuth timed out ({type(exc).__name__})", code="timeout") from None
        except httpx.TransportError as exc:
            raise OAuthUnavailableError(f"Intuit OAuth unreachable ({type(exc).__name__})", code="transport") from None
        except httpx.HTTPError as exc:
            raise OAuthProtocolError(
                f"the OAuth request could not be sent ({type(exc).__name__})", code="request"
            ) from None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise OAuthUnavailableError("Intuit answered with a body that is not JSON", code="bad_response") from None
    if not isinstance(body, dict):
        raise OAuthUnavailableError("Intuit answered with a JSON body that is not an object", code="bad_response")
    return body


def _raise_for(response: httpx.Response) -> None:
    """Decide whether an OAuth response is a failure, and which. Only Intuit's ``error`` code is kept: the
    description is free text and is not copied anywhere (it has been seen to quote a token prefix)."""
    status = response.status_code
    if 200 <= status < 300:
        return
    tid = response.headers.get("intuit_tid")
    error = _error_code(response)
    if error == "invalid_grant":
        raise OAuthGrantError("Intuit refused the grant (invalid_grant)", code=error, status=status, intuit_tid=tid)
    if status == 401 or error in ("invalid_client", "unauthorized_client"):
        raise OAuthClientError(
            f"Intuit refused the app's client credentials ({error or 'HTTP 401'})",
            code=error or "invalid_client",
            status=status,
            intuit_tid=tid,
        )
    if status >= 500 or status in (408, 429):
        raise OAuthUnavailableError(
            f"Intuit OAuth answered HTTP {status}", code=error or f"http_{status}", status=status, intuit_tid=tid
        )
    raise OAuthProtocolError(
        f"Intuit OAuth refused the request ({error or f'HTTP {status}'})",
        code=error or f"http_{status}",
        status=status,
        intuit_tid=tid,
    )


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str) and error.replace("_", "").isalnum() and len(error) <= 64:
        return error
    return None
