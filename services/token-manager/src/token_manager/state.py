"""The OAuth ``state``: signed, bound to one organization, expiring and single use.

A state is ``v1.<nonce>.<organization hex>.<expiry epoch s>.<mac>``, the MAC being HMAC-SHA256 over
``v1|nonce|organization|expiry`` under a key derived from the encryption keys. The signature stops forged and
tampered values (another organization, a later expiry) before anything else happens; the expiry bounds how long a
consent link works; and a database row per nonce, deleted when the callback consumes it, makes every state single
use — so a replayed callback URL is refused even within its lifetime (``store.consume_state``).

Verification order: shape → signature → expiry → (in the caller) the single-use row. A forged value therefore
never reaches the database, and an expired one is reported as expired only when it was genuinely ours.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

from token_manager.clock import Clock

__all__ = ["IssuedState", "StateError", "StateReason", "StateSigner", "VerifiedState"]

_VERSION = "v1"
_SHAPE = re.compile(r"v1\.([A-Za-z0-9_-]{22})\.([0-9a-f]{32})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})")
MAX_STATE_LENGTH = 256

StateReason = Literal["malformed", "bad_signature", "expired", "replayed"]

_MESSAGES: dict[StateReason, str] = {
    "malformed": "the state parameter is missing or not one this service issued",
    "bad_signature": "the state parameter was not signed by this service (forged or altered)",
    "expired": "the connection link expired; start connecting again",
    "replayed": "this connection link was already used; start connecting again",
}


class StateError(Exception):
    """The callback's ``state`` is refused; ``reason`` is stable and machine-readable."""

    def __init__(self, reason: StateReason) -> None:
        super().__init__(_MESSAGES[reason])
        self.reason: StateReason = reason
        self.message = _MESSAGES[reason]


@dataclass(frozen=True, slots=True)
class IssuedState:
    value: str
    nonce: str
    organization_id: UUID
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class VerifiedState:
    nonce: str
    organization_id: UUID
    expires_at: datetime


class StateSigner:
    """Issues and verifies states. ``keys``: current first; verification accepts any (key rotation)."""

    def __init__(self, keys: Sequence[bytes], *, ttl: timedelta, clock: Clock) -> None:
        if not keys:
            raise ValueError("at least one signing key is required")
        self._keys = tuple(keys)
        self._ttl = ttl
        self._clock = clock

    def issue(self, organization_id: UUID) -> IssuedState:
        nonce = _b64(secrets.token_bytes(16))
        expires_at = self._clock() + self._ttl
        expiry = str(int(expires_at.timestamp()))
        mac = _b64(_mac(self._keys[0], nonce, organization_id.hex, expiry))
        value = f"{_VERSION}.{nonce}.{organization_id.hex}.{expiry}.{mac}"
        return IssuedState(value, nonce, organization_id, datetime.fromtimestamp(int(expiry), UTC))

    def verify(self, value: str | None) -> VerifiedState:
        """Shape, signature and expiry. The caller then consumes the nonce's row to make it single use."""
        if not value or len(value) > MAX_STATE_LENGTH:
            raise StateError("malformed")
        match = _SHAPE.fullmatch(value)
        if match is None:
            raise StateError("malformed")
        nonce, organization, expiry, mac = match.groups()
        presented = _unb64(mac)
        if not any(hmac.compare_digest(presented, _mac(key, nonce, organization, expiry)) for key in self._keys):
            raise StateError("bad_signature")
        expires_at = datetime.fromtimestamp(int(expiry), UTC)
        if self._clock() >= expires_at:
            raise StateError("expired")
        return VerifiedState(nonce, UUID(hex=organization), expires_at)


def _mac(key: bytes, nonce: str, organization: str, expiry: str) -> bytes:
    message = f"{_VERSION}|{nonce}|{organization}|{expiry}".encode("ascii")
    return hmac.new(key, message, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
