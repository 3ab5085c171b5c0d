"""Connections: the connect flow (consent link, callback), disconnect, and what operators see.

Connect: ``start_connect`` signs a state, stores its nonce and returns Intuit's consent URL. ``complete_connect``
verifies the state (signature, expiry), consumes its nonce (single use) *before* the code is exchanged — so a
replayed callback never reaches Intuit — exchanges the code, proves the callback's realm with the new token
(``company.py``), and stores the encrypted tokens with ``QboConnected`` in one transaction. One company per
organization and one organization per company: a realm held by another organization is refused, and so is a
different realm for an organization that is not disconnected (its sync mappings belong to the first company).
A refused connect stores nothing; the tokens Intuit just issued are *not* revoked, because revoking a token revokes
the app's access to that company — which would disconnect the organization that rightfully holds it.

Disconnect revokes at Intuit (best effort), forgets the tokens, frees the realm and publishes
``QboConnectionLost(reason=disconnected)`` if the organization was connected.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from qbsync.persistence.database import Database
from qbsync.tokens.api import ConnectionBody, DisconnectBody
from token_manager import store
from token_manager.clock import Clock
from token_manager.company import CompanyNames, CompanyRefused
from token_manager.crypto import TokenCipher, TokenDecryptionError
from token_manager.events import ConnectionEvents
from token_manager.oauth import IntuitOAuthClient, OAuthError, OAuthGrantError, TokenSet
from token_manager.refresh import Refresher, refresh_context, token_columns
from token_manager.state import StateError, StateSigner
from token_manager.store import ConnectionRecord

__all__ = ["ConnectError", "ConnectResult", "ConnectionService"]

log = logging.getLogger("token_manager.connections")

_REALM = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_CODE_LENGTH = 2048

ConnectErrorCode = Literal[
    "invalid_state",
    "access_denied",
    "bad_request",
    "code_rejected",
    "realm_taken",
    "realm_mismatch",
    "realm_unverified",
    "conflict",
    "intuit_unavailable",
]
_HTTP_STATUS: dict[ConnectErrorCode, int] = {
    "invalid_state": 400,
    "access_denied": 400,
    "bad_request": 400,
    "code_rejected": 400,
    "realm_taken": 409,
    "realm_mismatch": 409,
    "realm_unverified": 409,
    "conflict": 409,
    "intuit_unavailable": 502,
}


class ConnectError(Exception):
    """A connect that did not happen; nothing was stored. ``message`` is shown to the person connecting."""

    def __init__(self, code: ConnectErrorCode, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.code: ConnectErrorCode = code
        self.message = message
        self.detail = detail
        self.http_status = _HTTP_STATUS[code]


@dataclass(frozen=True, slots=True)
class ConnectResult:
    organization_id: UUID
    realm_id: str
    company_name: str | None
    reconnected: bool


class ConnectionService:
    def __init__(
        self,
        *,
        db: Database,
        cipher: TokenCipher,
        oauth: IntuitOAuthClient,
        signer: StateSigner,
        refresher: Refresher,
        events: ConnectionEvents,
        companies: CompanyNames,
        clock: Clock,
        environment: str,
        warning: timedelta,
        on_change: Callable[[], Awaitable[None]],
    ) -> None:
        self._db = db
        self._cipher = cipher
        self._oauth = oauth
        self._signer = signer
        self._refresher = refresher
        self._events = events
        self._companies = companies
        self._clock = clock
        self._environment = environment
        self._warning = warning
        self._on_change = on_change

    # ---- connect -------------------------------------------------------------------------------------------------
    async def start_connect(self, organization_id: UUID) -> str:
        """Intuit's consent URL with a fresh signed state (raises :class:`ConnectError` if Intuit is unreachable)."""
        issued = self._signer.issue(organization_id)
        try:
            url = await self._oauth.authorization_url(issued.value)
        except OAuthError as exc:
            raise ConnectError("intuit_unavailable", "Intuit could not be reached; try again shortly.") from exc
        async with self._db.transaction() as conn:
            await store.insert_state(
                conn,
                nonce=issued.nonce,
                organization_id=organization_id,
                expires_at=issued.expires_at,
                now=self._clock(),
            )
        log.info("consent link issued for organization %s (valid until %s)", organization_id, issued.expires_at)
        return url

    async def complete_connect(
        self, *, state: str | None, code: str | None, realm_id: str | None, error: str | None
    ) -> ConnectResult:
        organization_id = await self._consume_state(state)
        if error:
            raise ConnectError("access_denied", "QuickBooks access was not granted; nothing was connected.")
        if not code or len(code) > _MAX_CODE_LENGTH or not realm_id or not _REALM.fullmatch(realm_id):
            raise ConnectError("bad_request", "The callback lacks a valid authorization code or company id.")
        try:
            tokens = await self._oauth.exchange_code(code)
        except OAuthGrantError as exc:
            raise ConnectError(
                "code_rejected", "The authorization expired or was already used; connect again."
            ) from exc
        except OAuthError as exc:
            raise ConnectError("intuit_unavailable", "Intuit could not complete the connection; try again.") from exc
        try:
            name = await self._companies.lookup(
                organization_id, realm_id, tokens.access_token, tokens.access_expires_at
            )
        except CompanyRefused as exc:
            log.warning("connect of organization %s refused: %s", organization_id, exc)
            raise ConnectError(
                "realm_unverified", "QuickBooks did not confirm the company of this authorization; connect again."
            ) from None
        try:
            result = await self._store(organization_id, realm_id, tokens, name)
        except IntegrityError:
            raise ConnectError(
                "conflict",
                "Another connection for this organization or company finished at the same moment; check the status.",
            ) from None
        self._events.kick()
        await self._on_change()
        log.info(
            "organization %s %s QuickBooks company %s",
            organization_id,
            "reconnected to" if result.reconnected else "connected to",
            realm_id,
        )
        return result

    async def _consume_state(self, state: str | None) -> UUID:
        try:
            verified = self._signer.verify(state)
        except StateError as exc:
            log.warning("OAuth callback refused: %s", exc.reason)
            raise ConnectError("invalid_state", exc.message, detail=exc.reason) from None
        async with self._db.transaction() as conn:
            fresh = await store.consume_state(
                conn, nonce=verified.nonce, organization_id=verified.organization_id, now=self._clock()
            )
        if not fresh:
            log.warning("OAuth callback refused: replayed state for organization %s", verified.organization_id)
            replayed = StateError("replayed")
            raise ConnectError("invalid_state", replayed.message, detail=replayed.reason)
        return verified.organization_id

    async def _store(self, organization_id: UUID, realm_id: str, tokens: TokenSet, name: str | None) -> ConnectResult:
        async with self._refresher.locked(organization_id) as row:
            record = row.record
            if record is not None and record.status != "disconnected" and record.realm_id != realm_id:
                raise ConnectError(
                    "realm_mismatch",
                    f"This organization is connected to QuickBooks company {record.realm_id}; disconnect it before "
                    "connecting another company.",
                )
            now = self._clock()
            version = (record.event_version if record is not None else 0) + 1
            values = {
                **token_columns(self._cipher, organization_id, tokens),
                "status": "connected",
                "realm_id": realm_id,
                "active_realm_id": realm_id,
                "environment": self._environment,
                "company_name": name,
                "refresh_token_changed_at": now,
                "connected_at": now,
                "status_changed_at": now,
                "last_refresh_at": None,
                "last_forced_refresh_at": None,
                "last_error": None,
                "last_error_at": None,
                "consecutive_failures": 0,
                "event_version": version,
                "updated_at": now,
            }

            async def change(conn: AsyncConnection) -> None:
                holder = await store.find_by_active_realm(conn, realm_id)
                if holder is not None and holder.organization_id != organization_id:
                    raise ConnectError(
                        "realm_taken",
                        f"QuickBooks company {realm_id} is already connected to another organization; "
                        "one company serves one organization.",
                    )
                if record is None:
                    await store.insert_connection(conn, {"organization_id": organization_id, **values})
                else:
                    await store.update_connection(conn, organization_id, values)
                await self._events.connected(
                    conn,
                    organization_id=organization_id,
                    realm_id=realm_id,
                    company_name=name,
                    version=version,
                    now=now,
                )

            await row.write(change)
        return ConnectResult(organization_id, realm_id, name, reconnected=record is not None)

    # ---- disconnect ----------------------------------------------------------------------------------------------
    async def disconnect(self, organization_id: UUID) -> DisconnectBody | None:
        """Revoke at Intuit, forget the tokens, free the realm. None if the organization never connected."""
        async with self._refresher.locked(organization_id) as row:
            record = row.record
            if record is None:
                return None
            revoked = await self._revoke(record)
            now = self._clock()
            await row.write(lambda conn: self._mark_disconnected(conn, record, now))
        self._events.kick()
        await self._on_change()
        log.info("organization %s disconnected from QuickBooks (revoked at Intuit: %s)", organization_id, revoked)
        return DisconnectBody(organization_id=organization_id, status="disconnected", revoked_at_intuit=revoked)

    async def _revoke(self, record: ConnectionRecord) -> bool:
        if record.refresh_token_ciphertext is None:
            return record.status != "connected"  # nothing left to revoke: it was lost before
        try:
            token = self._cipher.decrypt(
                record.refresh_token_ciphertext, context=refresh_context(record.organization_id)
            )
            await self._oauth.revoke(token)
        except (OAuthError, TokenDecryptionError) as exc:
            log.warning(
                "revoking organization %s at Intuit failed (%s); forgetting its tokens anyway",
                record.organization_id,
                exc,
            )
            return False
        return True

    async def _mark_disconnected(self, conn: AsyncConnection, record: ConnectionRecord, now: datetime) -> None:
        was_connected = record.status == "connected"
        version = record.event_version + (1 if was_connected else 0)
        await store.update_connection(
            conn,
            record.organization_id,
            {
                "status": "disconnected",
                "status_changed_at": now if record.status != "disconnected" else record.status_changed_at,
                "active_realm_id": None,
                "access_token_ciphertext": None,
                "refresh_token_ciphertext": None,
                "access_token_fingerprint": None,
                "event_version": version,
                "updated_at": now,
            },
        )
        if was_connected:
            await self._events.lost(
                conn,
                organization_id=record.organization_id,
                realm_id=record.realm_id,
                reason="disconnected",
                message="QuickBooks was disconnected for this organization",
                version=version,
                now=now,
            )

    # ---- what operators see --------------------------------------------------------------------------------------
    async def status(self, organization_id: UUID) -> ConnectionBody | None:
        async with self._db.connect() as conn:
            record = await store.get_connection(conn, organization_id)
        return None if record is None else self._view(record)

    async def all(self) -> list[ConnectionBody]:
        async with self._db.connect() as conn:
            records = await store.all_connections(conn)
        return [self._view(record) for record in records]

    async def reencrypt_tokens(self) -> int:
        """Key rotation: re-encrypt under the current key every token stored under an older one.

        Each row is rewritten with a compare-and-set on both ciphertexts, so a refresh that committed meanwhile
        (another replica) is never overwritten with the older tokens.
        """
        async with self._db.connect() as conn:
            records = await store.all_connections(conn)
        rotated = 0
        for record in records:
            old = (record.access_token_ciphertext, record.refresh_token_ciphertext)
            if all(c is None or self._cipher.is_current(c) for c in old):
                continue
            try:
                new = tuple(None if c is None else self._cipher.rotate(c) for c in old)
            except TokenDecryptionError:
                # A key still in use was dropped (or the row is damaged): say so and keep serving the others;
                # this organization's token requests answer 503 until the key is back or it reconnects.
                log.error(
                    "the stored tokens of organization %s cannot be decrypted with any configured key",
                    record.organization_id,
                )
                continue
            async with self._db.transaction() as conn:
                if await store.replace_ciphertexts(conn, record.organization_id, old=old, new=(new[0], new[1])):
                    rotated += 1
        return rotated

    async def purge_states(self) -> int:
        async with self._db.transaction() as conn:
            return await store.purge_states(conn, self._clock())

    def _view(self, record: ConnectionRecord) -> ConnectionBody:
        ends = record.refresh_token_ends_at
        connected = record.status == "connected"
        return ConnectionBody(
            organization_id=record.organization_id,
            status=record.status,
            realm_id=record.realm_id,
            environment=record.environment,
            company_name=record.company_name,
            connected_at=record.connected_at,
            status_changed_at=record.status_changed_at,
            access_token_expires_at=record.access_expires_at if connected else None,
            refresh_token_expires_at=record.refresh_expires_at if connected else None,
            refresh_token_hard_expires_at=record.refresh_hard_expires_at if connected else None,
            refresh_token_expiring_soon=connected and ends is not None and ends - self._clock() < self._warning,
            last_refresh_at=record.last_refresh_at,
            last_error=record.last_error,
            last_error_at=record.last_error_at,
            consecutive_refresh_failures=record.consecutive_failures,
        )
