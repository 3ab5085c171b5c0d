"""Single-flight token refresh: at most one refresh per organization at a time, in this process and across replicas.

Holding an organization (:meth:`Refresher.locked`) means, in order:

1. its in-process ``asyncio.Lock`` — concurrent requests of this process queue here, not at Intuit;
2. on PostgreSQL, a transaction holding ``SELECT … FOR UPDATE`` on its connection row (bounded by
   ``lock_timeout``) — other replicas queue on the row.

Under both, the row is read again and the decision is taken again (another holder may have refreshed meanwhile).
Only then is Intuit called, and the new access token **and** the (possibly rotated) refresh token are written in that
same transaction, before anyone is handed the new access token. A refresh that finds the row locked by another
replica's proactive sweep waits for it and then finds the token fresh; the sweep itself skips rows another replica
holds (``SKIP LOCKED``).

SQLite serves one process: the in-process lock is the whole story there, and the Intuit call happens outside a
transaction so the single SQLite writer is never held across the network. Several replicas need PostgreSQL.

The one window no lock can close is a crash after Intuit rotated the refresh token and before the commit. Where
Intuit keeps a superseded refresh token alive for a while (its older documentation: 24 h; the emulator's
``superseded_grace_s``) the retry after restart succeeds with the stored token and receives the new one. With strict
rotation the retry gets ``invalid_grant``: the connection then goes to ``needs_reconnect`` and one
``QboConnectionLost`` is published — the loss is reported, never silent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from qbsync.persistence.database import Database
from qbsync.tokens.api import ConnectionStatus, ErrorCode
from qbsync.tokens.fingerprint import token_fingerprint
from token_manager import metrics, store
from token_manager.clock import Clock
from token_manager.crypto import TokenCipher, TokenDecryptionError
from token_manager.events import ConnectionEvents, LostReason
from token_manager.oauth import IntuitOAuthClient, OAuthError, OAuthGrantError, TokenSet
from token_manager.store import ConnectionRecord, LockMode

__all__ = [
    "ActiveToken",
    "ConnectionProblem",
    "KeyedLocks",
    "NotConnected",
    "ReconnectRequired",
    "RefreshPolicy",
    "RefreshUnavailable",
    "Refresher",
    "access_context",
    "refresh_context",
    "token_columns",
]

log = logging.getLogger("token_manager.refresh")


# ---- what callers get -----------------------------------------------------------------------------------------------
class ConnectionProblem(Exception):
    """The organization cannot be given a token now. ``code`` is the API's error code."""

    code: ErrorCode = "not_connected"

    def __init__(self, message: str, *, status: ConnectionStatus | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status: ConnectionStatus | None = status


class NotConnected(ConnectionProblem):
    code: ErrorCode = "not_connected"


class ReconnectRequired(ConnectionProblem):
    """``needs_reconnect`` (refresh refused) or ``disconnected`` (an operator disconnected it)."""

    def __init__(self, message: str, *, status: Literal["needs_reconnect", "disconnected"]) -> None:
        super().__init__(message, status=status)
        self.code: ErrorCode = status


class RefreshUnavailable(ConnectionProblem):
    """A refresh failed for a passing reason and no valid access token is left: try again shortly."""

    code: ErrorCode = "refresh_unavailable"


@dataclass(frozen=True, slots=True)
class ActiveToken:
    organization_id: UUID
    realm_id: str
    access_token: str = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class RefreshPolicy:
    #: Refresh when the access token expires within this.
    margin: timedelta
    #: A 401 report forces a refresh at most this often per organization.
    forced_min_interval: timedelta
    #: PostgreSQL lock_timeout while waiting for another replica's refresh.
    lock_timeout: timedelta
    #: Concurrent refreshes of the proactive sweep.
    sweep_concurrency: int = 4


def access_context(organization_id: UUID) -> str:
    return f"{organization_id}/access_token"


def refresh_context(organization_id: UUID) -> str:
    return f"{organization_id}/refresh_token"


def token_columns(cipher: TokenCipher, organization_id: UUID, tokens: TokenSet) -> dict[str, Any]:
    """The columns a token response fills: both ciphertexts, the fingerprint and the expiries."""
    return {
        "access_token_ciphertext": cipher.encrypt(tokens.access_token, context=access_context(organization_id)),
        "refresh_token_ciphertext": cipher.encrypt(tokens.refresh_token, context=refresh_context(organization_id)),
        "access_token_fingerprint": token_fingerprint(tokens.access_token),
        "access_expires_at": tokens.access_expires_at,
        "refresh_expires_at": tokens.refresh_expires_at,
        "refresh_hard_expires_at": tokens.hard_expires_at,
    }


# ---- locking --------------------------------------------------------------------------------------------------------
class KeyedLocks:
    """One ``asyncio.Lock`` per organization, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[UUID, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: UUID) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


Write = Callable[[AsyncConnection], Awaitable[None]]


@dataclass
class HeldRow:
    """An organization's row while it is held; ``write`` changes it under the same hold."""

    record: ConnectionRecord | None
    _db: Database
    _conn: AsyncConnection | None  # PostgreSQL: the transaction holding the row lock

    async def write(self, change: Write) -> None:
        if self._conn is not None:
            await change(self._conn)
            return
        async with self._db.transaction() as conn:
            await change(conn)


_Kind = Literal["current", "refreshed", "lost", "failed", "missing", "skipped"]


@dataclass(frozen=True, slots=True)
class _Outcome:
    kind: _Kind
    record: ConnectionRecord | None = None
    problem: ConnectionProblem | None = None


# ---- the refresher --------------------------------------------------------------------------------------------------
class Refresher:
    def __init__(
        self,
        *,
        db: Database,
        cipher: TokenCipher,
        oauth: IntuitOAuthClient,
        events: ConnectionEvents,
        clock: Clock,
        policy: RefreshPolicy,
        locks: KeyedLocks | None = None,
        on_change: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._db = db
        self._cipher = cipher
        self._oauth = oauth
        self._events = events
        self._clock = clock
        self._policy = policy
        self.locks = locks or KeyedLocks()
        self._on_change = on_change

    @asynccontextmanager
    async def locked(self, organization_id: UUID, *, lock: LockMode = "wait") -> AsyncIterator[HeldRow]:
        """Hold an organization (in-process lock, then on PostgreSQL the row lock in an open transaction)."""
        async with self.locks.hold(organization_id):
            if self._db.is_sqlite:
                async with self._db.connect() as conn:
                    record = await store.get_connection(conn, organization_id)
                yield HeldRow(record, self._db, None)
                return
            async with self._db.transaction() as conn:
                timeout_ms = int(self._policy.lock_timeout.total_seconds() * 1000)
                await conn.execute(text(f"SET LOCAL lock_timeout = '{timeout_ms}ms'"))
                record = await store.get_connection(conn, organization_id, lock=lock)
                yield HeldRow(record, self._db, conn)

    # ---- public operations -----------------------------------------------------------------------------------------
    async def current_token(self, organization_id: UUID) -> ActiveToken:
        """A usable access token; refreshed first when it expires within the margin."""
        record = _usable(await self._read(organization_id))
        if not self._due(record, self._clock()):
            return self._active(record)
        return await self._refresh(organization_id, forced_fingerprint=None)

    async def after_unauthorized(self, organization_id: UUID, fingerprint: str) -> ActiveToken:
        """QBO refused the token with ``fingerprint``: refresh once if it is still the current one, else hand out
        the current one (someone already refreshed)."""
        record = _usable(await self._read(organization_id))
        if record.access_token_fingerprint != fingerprint and not self._due(record, self._clock()):
            return self._active(record)
        return await self._refresh(organization_id, forced_fingerprint=fingerprint)

    async def sweep(self) -> int:
        """Proactive refresh of every connected organization whose token expires within the margin."""
        async with self._db.connect() as conn:
            due = await store.due_for_refresh(conn, self._clock() + self._policy.margin)
        semaphore = asyncio.Semaphore(self._policy.sweep_concurrency)
        refreshed = 0

        async def one(organization_id: UUID) -> None:
            nonlocal refreshed
            async with semaphore:
                outcome = await self._attempt(organization_id, forced_fingerprint=None, lock="skip")
            refreshed += outcome.kind == "refreshed"
            if outcome.kind == "lost":  # already logged; publish the event and update the gauges now
                self._events.kick()
                if self._on_change is not None:
                    await self._on_change()

        results = await asyncio.gather(*(one(org) for org in due), return_exceptions=True)
        for org, result in zip(due, results, strict=True):
            if isinstance(result, Exception):
                log.warning("proactive refresh of organization %s failed: %s", org, type(result).__name__)
        return refreshed

    # ---- internals -------------------------------------------------------------------------------------------------
    async def _read(self, organization_id: UUID) -> ConnectionRecord | None:
        async with self._db.connect() as conn:
            return await store.get_connection(conn, organization_id)

    def _due(self, record: ConnectionRecord, now: datetime) -> bool:
        return record.access_expires_at is None or record.access_expires_at - self._policy.margin <= now

    def _should_refresh(self, record: ConnectionRecord, now: datetime, forced_fingerprint: str | None) -> bool:
        if self._due(record, now):
            return True
        if forced_fingerprint is None or record.access_token_fingerprint != forced_fingerprint:
            return False
        last = record.last_forced_refresh_at
        return last is None or now - last >= self._policy.forced_min_interval

    def _active(self, record: ConnectionRecord) -> ActiveToken:
        if record.access_token_ciphertext is None or record.access_expires_at is None:
            raise RefreshUnavailable("no access token is stored for this organization")
        try:
            token = self._cipher.decrypt(record.access_token_ciphertext, context=access_context(record.organization_id))
        except TokenDecryptionError as exc:
            log.error("%s", exc)
            raise RefreshUnavailable(
                "the stored access token cannot be decrypted (check the encryption keys)"
            ) from None
        return ActiveToken(record.organization_id, record.realm_id, token, record.access_expires_at)

    async def _refresh(self, organization_id: UUID, *, forced_fingerprint: str | None) -> ActiveToken:
        outcome = await self._attempt(organization_id, forced_fingerprint=forced_fingerprint, lock="wait")
        return await self._after(outcome, forced=forced_fingerprint is not None)

    async def _attempt(self, organization_id: UUID, *, forced_fingerprint: str | None, lock: LockMode) -> _Outcome:
        async with self.locked(organization_id, lock=lock) as row:
            record = row.record
            if record is None:
                return _Outcome("skipped" if lock == "skip" else "missing")
            try:
                _usable(record)
            except ConnectionProblem as problem:
                return _Outcome("lost", record, problem)
            now = self._clock()
            if not self._should_refresh(record, now, forced_fingerprint):
                return _Outcome("current", record)
            return await self._call_intuit(row, record, now, forced=forced_fingerprint is not None)

    async def _call_intuit(self, row: HeldRow, record: ConnectionRecord, now: datetime, *, forced: bool) -> _Outcome:
        org = record.organization_id
        try:
            if record.refresh_token_ciphertext is None:
                raise TokenDecryptionError(f"no refresh token is stored for {org}")
            refresh_token = self._cipher.decrypt(record.refresh_token_ciphertext, context=refresh_context(org))
            tokens = await self._oauth.refresh(refresh_token)
        except OAuthGrantError as exc:
            metrics.REFRESHES.labels("invalid_grant").inc()
            return await self._lose(row, record, now, exc)
        except (OAuthError, TokenDecryptionError) as exc:
            metrics.REFRESHES.labels("error").inc()
            return await self._fail(row, record, now, exc)
        metrics.REFRESHES.labels("success").inc()
        rotated = tokens.refresh_token != refresh_token
        values = token_columns(self._cipher, org, tokens)
        values.update(
            last_refresh_at=now,
            last_error=None,
            last_error_at=None,
            consecutive_failures=0,
            updated_at=now,
            refresh_token_changed_at=now if rotated else record.refresh_token_changed_at,
        )
        if forced:
            values["last_forced_refresh_at"] = now
        await row.write(lambda conn: store.update_connection(conn, org, values))
        log.info("refreshed the access token of organization %s (refresh token rotated: %s)", org, rotated)
        return _Outcome("refreshed", replace(record, **values))

    async def _lose(self, row: HeldRow, record: ConnectionRecord, now: datetime, exc: OAuthGrantError) -> _Outcome:
        org = record.organization_id
        ends = record.refresh_token_ends_at
        reason: LostReason = "expired" if ends is not None and ends <= now else "refresh_failed"
        message = (
            "Intuit refused the refresh token (invalid_grant): the connection was revoked, expired or superseded; "
            "reconnect QuickBooks"
        )
        version = record.event_version + 1

        async def change(conn: AsyncConnection) -> None:
            await store.update_connection(
                conn,
                org,
                {
                    "status": "needs_reconnect",
                    "status_changed_at": now,
                    "access_token_ciphertext": None,
                    "refresh_token_ciphertext": None,
                    "access_token_fingerprint": None,
                    "last_error": f"{message} [{exc}]",
                    "last_error_at": now,
                    "consecutive_failures": record.consecutive_failures + 1,
                    "event_version": version,
                    "updated_at": now,
                },
            )
            await self._events.lost(
                conn,
                organization_id=org,
                realm_id=record.realm_id,
                reason=reason,
                message=message,
                version=version,
                now=now,
            )

        await row.write(change)
        log.warning("organization %s lost its QuickBooks connection (%s): %s", org, reason, exc)
        return _Outcome("lost", record, ReconnectRequired(message, status="needs_reconnect"))

    async def _fail(self, row: HeldRow, record: ConnectionRecord, now: datetime, exc: Exception) -> _Outcome:
        org = record.organization_id
        values: dict[str, Any] = {
            "last_error": f"refresh failed: {exc}"[:1000],
            "last_error_at": now,
            "consecutive_failures": record.consecutive_failures + 1,
            "updated_at": now,
        }
        await row.write(lambda conn: store.update_connection(conn, org, values))
        log.warning("refresh of organization %s failed (%s); will try again", org, exc)
        return _Outcome("failed", replace(record, **values), RefreshUnavailable(f"refresh failed: {exc}"))

    async def _after(self, outcome: _Outcome, *, forced: bool = False) -> ActiveToken:
        """Turn an outcome into a token or an error, once the hold is released (and its transaction committed)."""
        if outcome.kind == "lost":
            self._events.kick()
            if self._on_change is not None:
                await self._on_change()
        if outcome.kind in ("missing", "skipped"):
            raise NotConnected("this organization has never connected QuickBooks")
        record = outcome.record
        assert record is not None
        if outcome.kind == "lost" or (outcome.kind == "failed" and forced):
            assert outcome.problem is not None
            raise outcome.problem
        if outcome.kind == "failed":
            expires = record.access_expires_at
            if expires is None or expires <= self._clock():
                assert outcome.problem is not None
                raise outcome.problem
            # Still valid for a while: hand it out; the sweep or the next request tries the refresh again.
        return self._active(record)


def _usable(record: ConnectionRecord | None) -> ConnectionRecord:
    if record is None:
        raise NotConnected("this organization has never connected QuickBooks")
    if record.status == "needs_reconnect":
        raise ReconnectRequired(record.last_error or "QuickBooks must be reconnected", status="needs_reconnect")
    if record.status == "disconnected":
        raise ReconnectRequired("QuickBooks was disconnected for this organization", status="disconnected")
    return record
