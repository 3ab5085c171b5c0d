"""The per-operation context every business rule receives, and the change events writes produce.

One :class:`WriteContext` is built per API operation (a batch builds one per item): it fixes "now" once, so every
stamp an operation writes agrees, and collects the :class:`ChangeEvent` s that CDC already sees through the
rows and that webhooks deliver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from qbo_emulator.clock import format_metadata_time
from qbo_emulator.config import FidelityConfig
from qbo_emulator.store import Company

__all__ = ["ChangeEvent", "Operation", "WriteContext"]

Operation = Literal["Create", "Update", "Delete", "Void", "Merge", "Emailed"]


@dataclass(frozen=True)
class ChangeEvent:
    """One entity change, as a webhook notification lists it."""

    realm_id: str
    entity: str
    entity_id: str
    operation: Operation
    at: datetime


@dataclass
class WriteContext:
    """What one operation needs: the company, the rules' switches, the moment and its outputs."""

    company: Company
    fidelity: FidelityConfig
    now: datetime
    allow_duplicate_docnum: bool = False
    events: list[ChangeEvent] = field(default_factory=list)

    @property
    def stamp(self) -> str:
        """``MetaData`` time for this operation, in the company's time zone."""
        return format_metadata_time(self.now, self.company.zone, self.fidelity.metadata_milliseconds)

    @property
    def today(self) -> str:
        """The company-local date (default ``TxnDate``)."""
        return self.now.astimezone(self.company.zone).date().isoformat()

    def emit(self, entity: str, entity_id: str, operation: Operation) -> None:
        self.events.append(ChangeEvent(self.company.realm_id, entity, entity_id, operation, self.now))

    def touch(self, entity: str, row: dict[str, Any]) -> None:
        """Store a server-side change to an existing row: SyncToken + 1 and a new LastUpdatedTime."""
        row["SyncToken"] = str(int(row.get("SyncToken", "0")) + 1)
        row.setdefault("MetaData", {})["LastUpdatedTime"] = self.stamp
        self.company.put(entity, row, self.now.timestamp())
        self.emit(entity, row["Id"], "Update")
