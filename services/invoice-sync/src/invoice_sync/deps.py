"""What every use case of invoice-sync shares, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from invoice_sync.batcher import MicroBatcher
from invoice_sync.config import InvoiceSyncSettings
from invoice_sync.references import References
from qbsync.qbo import QboClient
from qbsync.runtime import Publisher
from qbsync.settings import RuntimeSettings

__all__ = ["Deps"]


@dataclass(frozen=True)
class Deps:
    qbo: QboClient
    publisher: Publisher
    service: str
    runtime: RuntimeSettings
    settings: InvoiceSyncSettings
    references: References
    #: ``None`` when batching is off: every invoice is its own create request.
    batcher: MicroBatcher | None

    @property
    def lease(self) -> timedelta:
        """How long a write claimed by another event is presumed still running (a handler's whole budget)."""
        return timedelta(seconds=self.runtime.handler_timeout_seconds)

    @property
    def claim_wait(self) -> float:
        """How long an attempt waits in place for another attempt writing the same document (then: the ladder)."""
        return min(10.0, self.runtime.handler_timeout_seconds / 4)
