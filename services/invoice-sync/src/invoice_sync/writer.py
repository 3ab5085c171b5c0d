"""Writing a document to QuickBooks exactly once.

Three layers, each covering what the one before cannot:

1. ``requestid``: every write carries one derived from the event (QuickBooks replays the original answer to a
   repeated id; the client retries a dropped connection in place with the same id).
2. The write-ahead *intent*: committed before the write. A later attempt that finds it knows the earlier write may
   have happened — through a batch with another requestid, or longer ago than QuickBooks keeps request ids — and
   looks the document up by its number before creating anything. (A retry without an intent never wrote: the intent
   is committed before every write, so "attempt > 1" alone adds a query per retried record and nothing else.)
3. The number: QuickBooks refuses a second document with the same number (6140). The holder is looked up; if it is
   ours (same customer, same total) it is linked, otherwise it is a real conflict.

Only one attempt writes a document at a time (:func:`writing` holds a claim on its row): two copies of one event can
run at once (the main topic and a retry tier are consumed by different workers), and two creates racing a lookup
would both find nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from invoice_sync import store
from qbsync.persistence.database import Database
from qbsync.qbo.errors import QboDuplicateDocNumberError
from qbsync.runtime import DependencyNotReady, TransientError

__all__ = ["Claim", "Conflict", "Written", "claim_in", "find_existing", "write_once", "writing"]

_CLAIM_POLL_SECONDS = 0.05

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Written:
    row: Row
    action: Literal["created", "linked"]


@dataclass(frozen=True, slots=True)
class Conflict:
    """QuickBooks holds the document's number for a document that is not ours."""

    holder: Row


@dataclass(slots=True)
class Claim:
    """A won write claim: the document as it is now, and whether an earlier write's outcome is uncertain.

    ``release_in`` ends the claim inside the caller's own transaction (the one recording the outcome), which saves
    the separate release transaction when the attempt leaves :func:`writing`.

    A claim taken early (:func:`claim_in`, in the transaction that remembers the document) is held while the
    document is prepared; until the caller says :meth:`writes` nothing can have been written, so releasing it puts
    back the intent that was there before (a later attempt must not look the document up for a write that never
    started).
    """

    document: store.Document
    uncertain: bool
    claim_id: uuid.UUID = field(default_factory=uuid.uuid4)
    released: bool = False
    #: The intent before this claim, restored on release while nothing was written (early claims only).
    restore: tuple[UUID | None, datetime | None] | None = None

    def writes(self) -> None:
        """From now on the claim's attempt may write: its intent stays when the claim ends."""
        self.restore = None

    async def release_in(self, conn: AsyncConnection) -> None:
        """Release the claim as part of ``conn``'s transaction; call :meth:`mark_released` once it committed."""
        doc = self.document
        await store.release_write(
            conn, doc.organization_id, doc.kind, doc.document_id, claim=self.claim_id, restore_intent=self.restore
        )

    def mark_released(self) -> None:
        self.released = True


async def claim_in(
    conn: AsyncConnection,
    document: store.Document,
    *,
    event_id: UUID,
    lease: timedelta,
    now: datetime,
    current: bool = False,
) -> Claim | None:
    """Try to claim ``document`` inside the caller's transaction; None while another attempt holds it.

    ``document`` is the row as read in the same transaction: its intent is what a release before any write puts back.
    ``current``: nothing else can have changed the row since it was read in this transaction (write transactions are
    serialised, or the transaction already holds the row's lock), so it is not read again.
    """
    claim = uuid.uuid4()
    won, previous = await store.claim_write(
        conn,
        document.organization_id,
        document.kind,
        document.document_id,
        claim=claim,
        event_id=event_id,
        now=now,
        stale_before=now - lease,
        **({"intent_before": document.intent_event_id} if current else {}),
    )
    if not won:
        return None
    if current:
        claimed: store.Document | None = replace(document, intent_event_id=event_id, intent_at=now)
    else:
        claimed = await store.get_document(conn, document.organization_id, document.kind, document.document_id)
    assert claimed is not None, "a claimed document exists"
    return Claim(
        claimed,
        uncertain=previous is not None,
        claim_id=claim,
        restore=(document.intent_event_id, document.intent_at),
    )


@asynccontextmanager
async def writing(
    db: Database,
    document: store.Document,
    *,
    event_id: UUID,
    lease: timedelta,
    wait: float = 0.0,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    claimed: Claim | None = None,
) -> AsyncIterator[Claim]:
    """Hold the document's write claim for one attempt (``claimed``: one already won by :func:`claim_in`).

    Another attempt writing it right now (a second copy of the event on a retry tier, "Retry Sync" pressed while the
    original is retrying) is waited for up to ``wait`` seconds — the caller then usually finds the document synced —
    and after that this attempt waits its turn through the ladder. A crashed attempt's claim expires after ``lease``
    (the handler's whole time budget).
    """
    handle = claimed
    deadline = asyncio.get_running_loop().time() + wait
    while handle is None:
        async with db.transaction() as conn:
            handle = await claim_in(conn, document, event_id=event_id, lease=lease, now=now())
        if handle is not None:
            handle.writes()  # the classic claim leaves its intent, as it always did
            break
        if asyncio.get_running_loop().time() >= deadline:
            raise DependencyNotReady(
                f"another attempt is writing this {document.kind.replace('_', ' ')} to QuickBooks right now; "
                "waiting for it to finish",
                code="write_in_progress",
            )
        await asyncio.sleep(_CLAIM_POLL_SECONDS)
    try:
        yield handle
    finally:
        if not handle.released:
            async with db.transaction() as conn:
                await handle.release_in(conn)


async def write_once(
    *,
    body: Row,
    request_id: str,
    uncertain: bool,
    create: Callable[[Row, str], Awaitable[Row]],
    find: Callable[[], Awaitable[list[Row]]],
    ours: Callable[[Row], bool],
) -> Written | Conflict:
    """Create ``body`` unless it (or a conflicting holder of its number) already exists; see the module docstring."""
    if uncertain:
        existing = await find_existing(find, ours)
        if existing is not None:
            return existing
    try:
        return Written(await create(body, request_id), "created")
    except QboDuplicateDocNumberError:
        existing = await find_existing(find, ours)
        if existing is not None:
            return existing
        raise TransientError(
            "QuickBooks says the number is taken but no document holding it can be found yet", code="6140"
        ) from None


async def find_existing(
    find: Callable[[], Awaitable[list[Row]]], ours: Callable[[Row], bool]
) -> Written | Conflict | None:
    """The document holding the number: ours (lowest Id first) -> linked; someone else's -> a conflict."""
    rows = sorted(await find(), key=lambda row: int(row["Id"]) if str(row.get("Id", "")).isdigit() else 0)
    mine = [row for row in rows if ours(row)]
    if mine:
        return Written(mine[0], "linked")
    if rows:
        return Conflict(rows[0])
    return None
