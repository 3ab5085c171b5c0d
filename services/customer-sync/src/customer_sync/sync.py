"""customer-sync's use cases: push one customer snapshot, flush the nightly batch, "Sync All Customers".

Shape of every use case: gather (link, organization settings) -> decide (``qbsync.domain.customers``, pure) -> apply
(QBO through the client) -> return an outcome whose ``persist`` records the link in the runtime's transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from customer_sync import store
from qbsync.contracts.batchly import CustomerPayload
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.contracts.outbound import SyncCompleted, SyncCompletedPayload, SyncFailed, SyncFailedPayload, SyncWarning
from qbsync.domain.customers import (
    CustomerLink,
    converge_body,
    customer_body,
    decide,
    fingerprint,
    update_body,
    validate_customer,
)
from qbsync.persistence.organizations import get_organization
from qbsync.qbo import QboClient, QboCompany, QboQuery, request_id
from qbsync.qbo.errors import QboDuplicateNameError, QboNotFoundError, QboStaleObjectError
from qbsync.runtime import Completed, Deferred, HandlerContext, Ignored, PermanentError, Publisher, TransientError
from qbsync.runtime import ledger as runtime_ledger
from qbsync.runtime.errors import classify
from qbsync.runtime.results import result_event_id
from qbsync.settings import RuntimeSettings

__all__ = ["CustomerSync", "PushResult"]

log = logging.getLogger(__name__)

_STALE_RETRIES = 3
_VALIDATION_HINT = 'Correct the customer in Batchly; the next change (or "Sync to QB") syncs it again.'
_NAME_HELD_HINT = (
    "QuickBooks keeps one name list for customers, vendors and employees. Rename the customer in Batchly (or the "
    "other record in QuickBooks), then retry."
)


@dataclass(frozen=True, slots=True)
class PushResult:
    action: Literal["created", "updated", "linked", "unchanged", "ignored"]
    reason: str = ""
    qbo_id: str | None = None
    sync_token: str | None = None
    body: dict[str, Any] | None = None
    linked: bool = False


class CustomerSync:
    def __init__(self, qbo: QboClient, publisher: Publisher, *, service: str, runtime: RuntimeSettings) -> None:
        self.qbo = qbo
        self.publisher = publisher
        self.service = service
        self.runtime = runtime

    # ---- one snapshot (CustomerCreated / CustomerUpdated / SyncCustomerRequested) ---------------------------------
    async def on_snapshot(
        self, ctx: HandlerContext, event: AnyEnvelope, *, force: bool
    ) -> Completed | Ignored | Deferred:
        customer: CustomerPayload = event.payload
        org = event.organization_id
        now = datetime.now(UTC)
        problems = validate_customer(customer)
        async with ctx.db.transaction() as conn:
            # Remembered before anything can fail, so "Sync All Customers" knows every customer it has seen.
            await store.store_snapshot(
                conn,
                org,
                customer,
                version=event.entity_version,
                status="failed" if problems else "unsynced",
                now=now,
                error="; ".join(map(str, problems)) or None,
            )
        if problems:
            raise PermanentError(
                f"customer failed pre-sync validation: {'; '.join(map(str, problems))}",
                code="validation",
                field=problems[0].field,
                hint=_VALIDATION_HINT,
            )
        async with ctx.db.connect() as conn:
            settings = await get_organization(conn, org)
        if event.event_type == "CustomerUpdated" and settings.customer_update_mode == "nightly" and not force:

            async def hold(conn: AsyncConnection) -> None:
                await store.mark_snapshot(
                    conn, org, customer.customer_id, version=event.entity_version, status="deferred", now=now
                )

            return Deferred(
                reason="held for the organization's nightly customer batch (3 AM)", code="nightly_batch", persist=hold
            )
        result = await self.push(
            ctx.db, org, customer, version=event.entity_version, event_id=event.event_id, force=force
        )
        if result.action == "ignored":
            return Ignored(reason=result.reason, code="stale_snapshot")
        return Completed(
            action=result.action,
            qbo_id=result.qbo_id,
            persist=self._persist(org, customer, event.entity_version, result, now),
        )

    def _persist(self, org: UUID, customer: CustomerPayload, version: int, result: PushResult, now: datetime) -> Any:
        async def persist(conn: AsyncConnection) -> None:
            assert result.qbo_id is not None, "a pushed customer has a QBO id"
            assert result.sync_token is not None, "and a SyncToken"
            await store.save_link(
                conn,
                organization_id=org,
                customer_id=customer.customer_id,
                qbo_id=result.qbo_id,
                sync_token=result.sync_token,
                entity_version=version,
                pushed_body=result.body,
                pushed_fingerprint=fingerprint(result.body) if result.body is not None else None,
                linked=result.linked,
                now=now,
            )
            await store.mark_snapshot(conn, org, customer.customer_id, version=version, status="synced", now=now)

        return persist

    # ---- the QBO side ---------------------------------------------------------------------------------------------
    async def push(
        self, db: Any, org: UUID, customer: CustomerPayload, *, version: int, event_id: UUID, force: bool
    ) -> PushResult:
        """Bring QuickBooks to this snapshot, unless a newer one is (or is being) synced.

        Two snapshots of one customer can be written at once: a retry-tier copy of version 3 beside version 4 from
        the main topic. Each stores its snapshot before it writes, so when QuickBooks answers a write with 5010 (the
        customer changed since our SyncToken) — or a freshly found customer is about to be converged — a newer
        stored snapshot means the other write is the newer one: this one stands down instead of overwriting it.
        """
        body = customer_body(customer)
        async with db.connect() as conn:
            found = await store.get_link(conn, org, customer.customer_id)

        async def superseded() -> bool:
            async with db.connect() as conn:
                newest = await store.snapshot_version(conn, org, customer.customer_id)
            return newest is not None and newest > version

        try:
            return await self._push(db, org, customer, body, found, version, event_id, force, superseded)
        except _Superseded:
            return PushResult(
                "ignored",
                reason=f"stale snapshot: version {version} was superseded by a newer one while it was being written",
            )

    async def _push(
        self,
        db: Any,
        org: UUID,
        customer: CustomerPayload,
        body: dict[str, Any],
        found: tuple[CustomerLink, dict[str, Any] | None] | None,
        version: int,
        event_id: UUID,
        force: bool,
        superseded: Callable[[], Awaitable[bool]],
    ) -> PushResult:
        link, pushed = found if found is not None else (None, None)
        decision = decide(link=link, entity_version=version, body_fingerprint=fingerprint(body), force=force)
        if decision.action == "ignore":
            return PushResult("ignored", reason=decision.reason)
        company = self.qbo.company(org)
        if decision.action == "unchanged" and link is not None:
            return PushResult(
                "unchanged", qbo_id=link.qbo_id, sync_token=link.sync_token, body=pushed, linked=link.linked
            )
        if decision.action == "update" and link is not None:
            try:
                updated = await self._update(
                    company, link.qbo_id, link.sync_token, update_body(body, pushed), event_id, superseded
                )
            except QboNotFoundError:
                log.warning(
                    "QuickBooks customer %s of %s is gone (merged?); re-linking", link.qbo_id, customer.customer_id
                )
            else:
                return PushResult(
                    "updated", qbo_id=updated["Id"], sync_token=updated["SyncToken"], body=body, linked=link.linked
                )
        return await self._create_or_link(db, company, org, customer, body, event_id, superseded)

    async def _create_or_link(
        self,
        db: Any,
        company: QboCompany,
        org: UUID,
        customer: CustomerPayload,
        body: dict[str, Any],
        event_id: UUID,
        superseded: Callable[[], Awaitable[bool]] | None = None,
    ) -> PushResult:
        existing = await self._find_existing(db, company, org, customer, body)
        if existing is None:
            try:
                created = await company.create("Customer", body, request_id=request_id(event_id, "customer.create"))
            except QboDuplicateNameError:
                # The name exists but our lookup missed it: created concurrently, or held by a vendor/employee.
                existing = await self._by_name(db, company, org, customer, body["DisplayName"])
                if existing is None:
                    raise await self._name_held_error(company, body["DisplayName"]) from None
            else:
                return PushResult("created", qbo_id=created["Id"], sync_token=created["SyncToken"], body=body)
        converged = await self._converge(company, existing, body, event_id, superseded)
        return PushResult("linked", qbo_id=converged["Id"], sync_token=converged["SyncToken"], body=body, linked=True)

    async def _find_existing(
        self, db: Any, company: QboCompany, org: UUID, customer: CustomerPayload, body: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Seed error 1: a QuickBooks customer with the same name (inactive ones too) or e-mail is linked, not
        duplicated.

        Also what makes an uncertain earlier attempt safe: if it created the customer, this finds it.
        """
        by_name = await self._by_name(db, company, org, customer, body["DisplayName"])
        if by_name is not None:
            return by_name
        email = body.get("PrimaryEmailAddr", {}).get("Address")
        if not email:
            return None
        query = QboQuery.select("Customer").where("PrimaryEmailAddr", "=", email).where("Active", "IN", [True, False])
        page = await company.query(query)
        for candidate in sorted(page.rows, key=lambda row: int(row["Id"]) if str(row["Id"]).isdigit() else 0):
            async with db.connect() as conn:
                owner = await store.link_owner(conn, org, candidate["Id"])
            if owner is None or owner == customer.customer_id:
                return candidate
        return None  # every customer with that e-mail already belongs to another Batchly customer: create a new one

    async def _by_name(
        self, db: Any, company: QboCompany, org: UUID, customer: CustomerPayload, name: str
    ) -> dict[str, Any] | None:
        query = QboQuery.select("Customer").where("DisplayName", "=", name).where("Active", "IN", [True, False])
        page = await company.query(query)
        if not page.rows:
            return None
        candidate = page.rows[0]
        async with db.connect() as conn:
            owner = await store.link_owner(conn, org, candidate["Id"])
        if owner is not None and owner != customer.customer_id:
            raise PermanentError(
                f"the QuickBooks customer named {name!r} (Id {candidate['Id']}) is already linked to another Batchly "
                f"customer ({owner}); two Batchly customers cannot share one QuickBooks customer",
                code="6240",
                field="display_name",
                hint="Give the two customers different display names in Batchly.",
            )
        return candidate

    async def _name_held_error(self, company: QboCompany, name: str) -> PermanentError:
        for entity, noun in (("Vendor", "a vendor"), ("Employee", "an employee")):
            query = QboQuery.select(entity).where("DisplayName", "=", name).where("Active", "IN", [True, False])
            page = await company.query(query)
            if page.rows:
                return PermanentError(
                    f"the name {name!r} is held by {noun} in QuickBooks (Id {page.rows[0]['Id']}); "
                    f"{noun} cannot be linked as a customer",
                    code="6240",
                    field="display_name",
                    hint=_NAME_HELD_HINT,
                )
        return PermanentError(
            f"QuickBooks says the name {name!r} exists, but no customer, vendor or employee with it can be found",
            code="6240",
            field="display_name",
            hint=_NAME_HELD_HINT,
        )

    async def _converge(
        self,
        company: QboCompany,
        existing: dict[str, Any],
        body: dict[str, Any],
        event_id: UUID,
        superseded: Callable[[], Awaitable[bool]] | None = None,
    ) -> dict[str, Any]:
        """Make a linked QuickBooks customer carry the newest Batchly snapshot (only what differs is written; what
        Batchly no longer has is cleared)."""
        wanted = converge_body(body, existing)
        if all(existing.get(key) == value or _same(existing.get(key), value) for key, value in wanted.items()):
            return existing
        if superseded is not None and await superseded():  # found one a newer snapshot's write created
            raise _Superseded
        return await self._update(company, existing["Id"], existing["SyncToken"], wanted, event_id, superseded)

    async def _update(
        self,
        company: QboCompany,
        qbo_id: str,
        sync_token: str,
        body: dict[str, Any],
        event_id: UUID,
        superseded: Callable[[], Awaitable[bool]] | None = None,
    ) -> dict[str, Any]:
        """Sparse update with the current SyncToken; on 5010 re-read and retry (bounded) — unless a newer snapshot
        of the customer was stored meanwhile (its write is the one that changed the customer)."""
        token = sync_token
        for _ in range(_STALE_RETRIES):
            try:
                return await company.update(
                    "Customer",
                    {**body, "Id": qbo_id, "SyncToken": token},
                    request_id=request_id(event_id, f"customer.update:{qbo_id}:{token}"),
                )
            except QboStaleObjectError:
                if superseded is not None and await superseded():
                    raise _Superseded from None
                current = await company.read("Customer", qbo_id)
                token = str(current["SyncToken"])
            except QboDuplicateNameError:
                raise await self._name_held_error(company, body["DisplayName"]) from None
        raise TransientError(
            f"QuickBooks customer {qbo_id} kept changing (stale object 5010 {_STALE_RETRIES} times)", code="5010"
        )

    # ---- bulk: "Sync All Customers" and the nightly flush ---------------------------------------------------------
    async def bulk(
        self, ctx: HandlerContext, event: AnyEnvelope, *, statuses: Sequence[str] | None, force: bool
    ) -> Completed:
        """Push every stored snapshot with one of ``statuses``; progress is visible in the ledger as it goes.

        A customer that fails permanently is recorded (ledger, ``SyncFailed``) and the batch goes on; a transient or
        auth failure stops the batch and the command retries (customers already synced are skipped as unchanged).
        """
        org = event.organization_id
        async with ctx.db.connect() as conn:
            snapshots = await store.snapshots_to_sync(conn, org, statuses)
        synced = failed = 0
        for index, snapshot in enumerate(snapshots, start=1):
            customer = snapshot.customer
            child_event = uuid.uuid5(event.event_id, str(customer.customer_id))
            started = datetime.now(UTC)
            try:
                problems = validate_customer(customer)
                if problems:
                    raise PermanentError(
                        f"customer failed pre-sync validation: {'; '.join(map(str, problems))}",
                        code="validation",
                        field=problems[0].field,
                        hint=_VALIDATION_HINT,
                    )
                result = await self.push(
                    ctx.db, org, customer, version=snapshot.entity_version, event_id=child_event, force=force
                )
            except Exception as exc:
                error = classify(exc)
                if error.error_class != "permanent":
                    raise
                await self._record_child(ctx, event, snapshot, child_event, started, error=error)
                failed += 1
                continue
            if result.action == "ignored":
                continue
            async with ctx.db.transaction() as conn:
                await self._persist(org, customer, snapshot.entity_version, result, datetime.now(UTC))(conn)
            await self._record_child(ctx, event, snapshot, child_event, started, result=result)
            synced += 1
            if index % 25 == 0:
                ctx.log.info("%s: %d/%d customers processed", event.event_type, index, len(snapshots))
        summary = f"{synced} synced, {failed} failed (of {len(snapshots)})"
        return Completed(action="applied", warnings=[SyncWarning(code="bulk_summary", message=summary)])

    async def _record_child(
        self,
        ctx: HandlerContext,
        parent: AnyEnvelope,
        snapshot: store.Snapshot,
        child_event: UUID,
        started: datetime,
        *,
        result: PushResult | None = None,
        error: Any = None,
    ) -> None:
        """A ledger row and a result event for one customer of a bulk command."""
        now = datetime.now(UTC)
        customer = snapshot.customer
        entry = runtime_ledger.LedgerEntry(
            service=self.service,
            event_id=child_event,
            event_type=parent.event_type,
            organization_id=parent.organization_id,
            entity_type="customer",
            entity_id=customer.customer_id,
            entity_version=snapshot.entity_version,
            direction="push",
            status="completed" if result else "failed",
            attempts=1,
            max_attempts=1,
            source_topic=ctx.topic,
            source_partition=ctx.partition,
            source_offset=ctx.offset,
            now=now,
            occurred_at=parent.occurred_at,
            last_attempt_at=started,
            completed=result is not None,
        )
        common: dict[str, Any] = {
            "schema_version": 1,
            "occurred_at": now,
            "organization_id": parent.organization_id,
            "entity_id": customer.customer_id,
            "entity_version": snapshot.entity_version,
            "correlation_id": parent.correlation_id or parent.event_id,
            "causation_id": parent.event_id,
        }
        outcome: AnyEnvelope
        if result is not None:
            action = result.action
            if action == "ignored":
                raise ValueError("an ignored snapshot has no child result")
            entry.action, entry.qbo_id = action, result.qbo_id
            outcome = SyncCompleted(
                event_id=result_event_id(child_event, self.service, "completed", 1),
                event_type="SyncCompleted",
                payload=SyncCompletedPayload(
                    service=self.service,
                    source_event_id=parent.event_id,
                    source_event_type=parent.event_type,
                    entity_type="customer",
                    attempt=1,
                    max_attempts=1,
                    action=action,
                    qbo_id=result.qbo_id,
                ),
                **common,
            )
        else:
            entry.error_class, entry.error_code, entry.error_message, entry.hint = (
                error.error_class,
                error.code,
                error.message,
                error.hint,
            )
            entry.manual_retry_available = True
            async with ctx.db.transaction() as conn:
                await store.mark_snapshot(
                    conn,
                    parent.organization_id,
                    customer.customer_id,
                    version=snapshot.entity_version,
                    status="failed",
                    now=now,
                    error=error.message,
                )
            outcome = SyncFailed(
                event_id=result_event_id(child_event, self.service, "failed", 1),
                event_type="SyncFailed",
                payload=SyncFailedPayload(
                    service=self.service,
                    source_event_id=parent.event_id,
                    source_event_type=parent.event_type,
                    entity_type="customer",
                    attempt=1,
                    max_attempts=1,
                    error_class=error.error_class,
                    error_code=error.code,
                    message=error.message,
                    hint=error.hint,
                    manual_retry_available=True,
                ),
                **common,
            )
        async with ctx.db.transaction() as conn:
            await runtime_ledger.upsert_ledger(conn, entry)
        await self.publisher.publish(outcome)


def _same(current: Any, wanted: Any) -> bool:
    """Whether QuickBooks' value already equals ours for the parts we send (QBO adds Ids and other keys)."""
    if isinstance(wanted, dict) and isinstance(current, dict):
        return all(_same(current.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, str) and isinstance(current, str):
        return current == wanted
    return bool(current == wanted)


class _Superseded(Exception):
    """A newer snapshot of the customer was stored while this one was being written: it stands down."""
