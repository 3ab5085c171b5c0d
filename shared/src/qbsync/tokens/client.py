"""``TokenManagerClient``: how a sync service gets QuickBooks access tokens (a :class:`TokenProvider` over HTTP).

* **Cache**: one grant per organization, used until ``client_cache_margin_seconds`` before it expires. Expiry is
  tracked with this process's monotonic clock from the ``expires_in`` token-manager sends, so clock skew between
  hosts cannot make a service use a token longer than it lives.
* **Single flight**: concurrent callers for one organization share one request, and concurrent 401 reports of one
  token share one report — token-manager sees one call, not one per coroutine.
* **401 reports** carry the token's fingerprint, never the token. If another caller in this process already holds a
  newer token, it is returned without asking token-manager at all.
* **Errors**: "must reconnect" (409) becomes :class:`QboAuthLostError` (the runtime parks the work); network
  trouble and 5xx become :class:`QboTransportError` (retryable); a refused service credential or any other
  unexpected answer becomes :class:`QboRequestError` (a configuration fault: retried through the ladder).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from uuid import UUID

import httpx
from pydantic import ValidationError

from qbsync.qbo.auth import AccessGrant, TokenProvider
from qbsync.qbo.errors import QboAuthLostError, QboRequestError, QboTransportError
from qbsync.settings import TokenManagerSettings
from qbsync.tokens.api import RECONNECT_ERRORS, ErrorBody, TokenBody, token_path, unauthorized_path
from qbsync.tokens.fingerprint import token_fingerprint

__all__ = ["TokenManagerClient"]

log = logging.getLogger("qbsync.tokens")

MonotonicClock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class _Cached:
    grant: AccessGrant
    #: Monotonic time after which the grant is no longer handed out.
    good_until: float


class TokenManagerClient(TokenProvider):
    """Access grants from token-manager. One per process; close with :meth:`aclose` (or ``async with``)."""

    def __init__(
        self,
        settings: TokenManagerSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: MonotonicClock = time.monotonic,
        timeout_seconds: float = 30.0,
    ) -> None:
        self._margin = float(settings.client_cache_margin_seconds)
        self._clock = clock
        self._http = httpx.AsyncClient(
            base_url=settings.url.rstrip("/"),
            transport=transport,
            timeout=httpx.Timeout(timeout_seconds, connect=5.0),
            follow_redirects=False,
            headers={
                "Authorization": f"Bearer {settings.service_token.get_secret_value()}",
                "Accept": "application/json",
                "User-Agent": "qbsync-token-client/0.1",
            },
        )
        self._cache: dict[UUID, _Cached] = {}
        self._inflight: dict[tuple[str, UUID, str], asyncio.Task[AccessGrant]] = {}

    # ------------------------------------------------------------------------------------------------ TokenProvider
    async def get_grant(self, organization_id: UUID) -> AccessGrant:
        cached = self._fresh(organization_id)
        if cached is not None:
            return cached
        return await self._shared(("grant", organization_id, ""), lambda: self._fetch(organization_id))

    async def report_unauthorized(self, organization_id: UUID, grant: AccessGrant) -> AccessGrant:
        cached = self._cache.get(organization_id)
        if cached is not None:
            if cached.grant.access_token == grant.access_token:
                del self._cache[organization_id]
            elif self._clock() < cached.good_until:
                return cached.grant  # a newer token already arrived in this process
        fingerprint = token_fingerprint(grant.access_token)
        return await self._shared(
            ("unauthorized", organization_id, fingerprint), lambda: self._report(organization_id, fingerprint)
        )

    # ------------------------------------------------------------------------------------------------ lifecycle
    async def aclose(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def forget(self, organization_id: UUID) -> None:
        """Drop the cached grant of an organization (e.g. after a ``QboConnectionLost`` event)."""
        self._cache.pop(organization_id, None)

    # ------------------------------------------------------------------------------------------------ internals
    def _fresh(self, organization_id: UUID) -> AccessGrant | None:
        cached = self._cache.get(organization_id)
        if cached is None:
            return None
        if self._clock() < cached.good_until:
            return cached.grant
        del self._cache[organization_id]
        return None

    async def _shared(self, key: tuple[str, UUID, str], make: Callable[[], Awaitable[AccessGrant]]) -> AccessGrant:
        """One request per key at a time; every concurrent caller awaits the same one.

        The request runs as its own task and callers await it shielded, so a caller being cancelled (its handler
        timed out) does not cancel the request the other callers are waiting for.
        """
        task = self._inflight.get(key)
        if task is None:

            async def run() -> AccessGrant:
                return await make()

            task = asyncio.create_task(run(), name=f"token-manager {key[0]}")
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._settled(key, done))
        return await asyncio.shield(task)

    def _settled(self, key: tuple[str, UUID, str], task: asyncio.Task[AccessGrant]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved: a failure nobody awaited any more is not reported as "never retrieved"

    async def _fetch(self, organization_id: UUID) -> AccessGrant:
        response = await self._send("GET", token_path(organization_id))
        return self._accept(organization_id, response)

    async def _report(self, organization_id: UUID, fingerprint: str) -> AccessGrant:
        log.info("QBO refused an access token of organization %s (fingerprint %s)", organization_id, fingerprint)
        response = await self._send("POST", unauthorized_path(organization_id), json={"fingerprint": fingerprint})
        return self._accept(organization_id, response)

    async def _send(self, method: str, path: str, *, json: dict[str, Any] | None = None) -> httpx.Response:
        """The one place httpx exceptions are translated."""
        try:
            return await self._http.request(method, path, json=json)
        except httpx.TransportError as exc:  # timeouts, refused, reset, protocol errors
            raise QboTransportError(f"token-manager unreachable ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:  # invalid URL and other misuse
            raise QboRequestError(f"token-manager request could not be sent ({type(exc).__name__})") from exc

    def _accept(self, organization_id: UUID, response: httpx.Response) -> AccessGrant:
        status = response.status_code
        if status == 200:
            grant, expires_in = self._parse_grant(organization_id, response)
            self._store(grant, expires_in)
            return grant
        error = _error_body(response)
        if status == 409 and error is not None and error.error in RECONNECT_ERRORS:
            self._cache.pop(organization_id, None)
            raise QboAuthLostError(
                f"organization {organization_id} must reconnect QuickBooks ({error.error}): {error.message}",
                status=status,
                code=error.error,
            )
        detail = f"{error.error}: {error.message}" if error is not None else None
        if status >= 500 or status == 429:
            raise QboTransportError(f"token-manager answered HTTP {status}", status=status, detail=detail)
        raise QboRequestError(f"token-manager refused the request (HTTP {status})", status=status, detail=detail)

    def _parse_grant(self, organization_id: UUID, response: httpx.Response) -> tuple[AccessGrant, int]:
        try:
            body = TokenBody.model_validate_json(response.content)
        except ValidationError:
            raise QboTransportError("token-manager sent an unreadable token response", status=200) from None
        if body.organization_id != organization_id:
            raise QboRequestError("token-manager answered for another organization", status=200)
        grant = AccessGrant(organization_id, body.realm_id, body.access_token, body.expires_at)
        return grant, body.expires_in

    def _store(self, grant: AccessGrant, expires_in: int) -> None:
        good_until = self._clock() + expires_in - self._margin
        if good_until <= self._clock():
            return  # too close to expiry to reuse; the next caller asks again
        current = self._cache.get(grant.organization_id)
        if current is not None and current.grant.expires_at > grant.expires_at:
            return  # a slower, older answer must not replace a newer token
        self._cache[grant.organization_id] = _Cached(grant, good_until)


def _error_body(response: httpx.Response) -> ErrorBody | None:
    try:
        return ErrorBody.model_validate_json(response.content)
    except ValidationError:
        return None
