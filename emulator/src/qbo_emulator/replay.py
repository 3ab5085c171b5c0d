"""``requestid`` idempotency (facts §2): a replayed id gets the original response, not a second write.

Scope is one company: the same id in two companies means two requests. Which responses are kept is the
caller's decision (see ``FidelityConfig.requestid_replay_errors``); how long they are kept is
``requestid_retention_s`` (``None``: the process lifetime). Concurrent duplicates need no lock: an operation runs
to completion on the event loop without yielding, so the second one always finds the first one's response.
"""

from __future__ import annotations

from dataclasses import dataclass

from qbo_emulator.clock import Clock
from qbo_emulator.config import FidelityConfig

__all__ = ["ReplayCache", "StoredResponse"]


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes
    media_type: str
    stored_at: float


class ReplayCache:
    """Responses by ``(realm_id, requestid)``."""

    def __init__(self, fidelity: FidelityConfig, clock: Clock) -> None:
        self._fidelity = fidelity
        self._clock = clock
        self._stored: dict[tuple[str, str], StoredResponse] = {}

    def __len__(self) -> int:
        return len(self._stored)

    def lookup(self, realm_id: str, request_id: str) -> StoredResponse | None:
        """The stored response for a replay, unless it is older than the retention window."""
        key = (realm_id, request_id)
        stored = self._stored.get(key)
        retention = self._fidelity.requestid_retention_s
        if stored is not None and retention is not None and self._clock.timestamp() - stored.stored_at > retention:
            del self._stored[key]
            return None
        return stored

    def store(self, realm_id: str, request_id: str, response: StoredResponse) -> None:
        self._stored[(realm_id, request_id)] = response

    def clear(self, realm_id: str | None = None) -> None:
        if realm_id is None:
            self._stored.clear()
        else:
            self._stored = {k: v for k, v in self._stored.items() if k[0] != realm_id}
