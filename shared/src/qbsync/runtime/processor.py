"""The life of one record: decode, de-duplicate, handle, and make the outcome durable.

Order of durable steps (an offset is committed only after the last one):

=================  ===========================================================================================
outcome            durable steps, in order
=================  ===========================================================================================
completed/ignored  one transaction: handler state + idempotency row (with the result records) + ledger + attempt;
                   then publish the results. A crash in between: the redelivered record finds the idempotency row
                   and re-publishes the stored results instead of repeating the effect.
recorded           one transaction: handler state + idempotency row; publish; after-commit hook.
retry              send to the next retry tier (same key and value, qbsync-* headers) and await the ack; then ledger
                   + attempt; then publish ``SyncStatusChanged(retrying)``.
dead letter        send to the dead-letter topic and await the ack; then ledger + attempt; then ``SyncFailed``.
parked             one transaction: parked row + ledger + attempt; then ``SyncStatusChanged(parked)``.
=================  ===========================================================================================

Recording an outcome can fail (database or broker down): the step is retried in place with capped back-off and the
partition waits — nothing is skipped. On shutdown the record is abandoned uncommitted and comes again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from aiokafka.structs import ConsumerRecord
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from qbsync.contracts.codec import DecodeError, decode_envelope
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.contracts.registry import EventSpec
from qbsync.persistence.database import Database
from qbsync.runtime import headers as h
from qbsync.runtime import ledger, metrics, results
from qbsync.runtime.errors import Classified, classify, is_database_outage, is_laddered
from qbsync.runtime.handlers import Completed, Deferred, HandlerContext, HandlerRegistry, Ignored, Outcome, Recorded
from qbsync.runtime.kafka import OutboundRecord, Publisher, record_for
from qbsync.runtime.partition import Prepared
from qbsync.settings import RuntimeSettings
from qbsync.topics import dead_letter_topic, retry_topic

__all__ = ["Delivery", "RecordProcessor"]

log = logging.getLogger("qbsync.runtime")

T = TypeVar("T")


class _Abandoned(Exception):
    """Raised when stopping interrupts a durable step: the record stays uncommitted and is redelivered."""


@dataclass(slots=True)
class Delivery:
    """A fetched record and what decoding it taught us."""

    record: ConsumerRecord[bytes, bytes]
    #: The record's logical topic (without the configured prefix).
    topic: str
    headers: h.Headers
    retry: h.RetryContext | None
    spec: EventSpec | None
    envelope: AnyEnvelope | None
    error: DecodeError | None

    @property
    def attempt(self) -> int:
        return self.retry.attempt if self.retry else 1

    @property
    def generation(self) -> str:
        """Non-empty for an operator's replay: its results get ids of their own."""
        return self.headers.get(h.REPLAYED_AT, "")

    @property
    def source(self) -> tuple[str, int, int]:
        """(topic, partition, offset) of the original record, also when this is a retry-tier copy."""
        if self.retry:
            return self.retry.original_topic, self.retry.original_partition, self.retry.original_offset
        return self.topic, self.record.partition, self.record.offset


class RecordProcessor:
    def __init__(
        self,
        *,
        service: str,
        group: str,
        registry: HandlerRegistry,
        db: Database,
        publisher: Publisher,
        settings: RuntimeSettings,
        resources: Any = None,
        park_when_disconnected: bool = True,
        direction: str = "push",
        hooks: ProcessorHooks | None = None,
    ) -> None:
        self.service = service
        self.group = group
        self.registry = registry
        self.db = db
        self.publisher = publisher
        self.settings = settings
        self.resources = resources
        self.park_when_disconnected = park_when_disconnected
        self.direction = direction
        self.hooks = hooks or ProcessorHooks()
        self.stopping = asyncio.Event()
        self._prefix = publisher.topic_prefix
        self._dlt = dead_letter_topic(service)
        self._retry_topics = {retry_topic(service, tier) for tier in range(1, settings.max_attempts)}

    # ---- preparation (synchronous, in the fetch path) ------------------------------------------------------------
    def prepare(self, record: ConsumerRecord[bytes, bytes]) -> Prepared[Delivery]:
        delivery = self._decode(record)
        if delivery.envelope is not None:
            key: object = (delivery.envelope.ENTITY_TYPE, delivery.envelope.entity_id)
        else:
            key = ("undecodable", record.offset)
        due: float | None = None
        if delivery.retry is not None:
            delay = (delivery.retry.due_at - datetime.now(UTC)).total_seconds()
            due = asyncio.get_running_loop().time() + max(delay, 0.0)
        return Prepared(offset=record.offset, key=key, due=due, item=delivery)

    def _decode(self, record: ConsumerRecord[bytes, bytes]) -> Delivery:
        topic = record.topic.removeprefix(self._prefix)
        try:
            headers = h.decode_headers(record.headers)
            retry = h.RetryContext.from_headers(headers) if topic in self._retry_topics else None
        except h.HeaderError as exc:
            error = DecodeError("bad_headers", str(exc))
            return Delivery(record, topic, _readable_headers(record.headers), None, None, None, error)
        value = record.value or b""
        if len(value) > self.settings.max_event_bytes:
            oversized = DecodeError(
                "oversized", f"record value is {len(value)} bytes; the limit is {self.settings.max_event_bytes}"
            )
            return Delivery(record, topic, headers, retry, None, None, oversized)
        try:
            spec, envelope = decode_envelope(value)
        except DecodeError as exc:
            return Delivery(record, topic, headers, retry, None, None, exc)
        violation = self._check_contract(record, topic, headers, retry, spec, envelope)
        return Delivery(record, topic, headers, retry, spec, envelope if violation is None else None, violation)

    @staticmethod
    def _check_contract(
        record: ConsumerRecord[bytes, bytes],
        record_topic: str,
        headers: h.Headers,
        retry: h.RetryContext | None,
        spec: EventSpec,
        envelope: AnyEnvelope,
    ) -> DecodeError | None:
        declared = headers.get(h.EVENT_TYPE)
        if declared is None:
            return DecodeError("bad_headers", f"missing required header {h.EVENT_TYPE!r}")
        if declared != envelope.event_type:
            return DecodeError("header_mismatch", f"header event-type {declared!r} differs from the envelope's")
        content_type = headers.get(h.CONTENT_TYPE)
        if content_type is not None and content_type.split(";")[0].strip().lower() != h.JSON:
            return DecodeError("bad_headers", f"content-type must be {h.JSON}")
        if record.key != str(envelope.organization_id).encode():
            return DecodeError("header_mismatch", "the record key must be the envelope's organization_id")
        topic = retry.original_topic if retry else record_topic
        if topic != spec.topic:
            return DecodeError("wrong_topic", f"{spec.event_type} belongs on {spec.topic}, not {topic}")
        return None

    # ---- processing ----------------------------------------------------------------------------------------------
    async def process(self, prepared: Prepared[Delivery]) -> None:
        delivery = prepared.item
        started = datetime.now(UTC)
        topic = delivery.topic
        try:
            if delivery.error is not None or delivery.envelope is None or delivery.spec is None:
                await self._dead_letter_malformed(delivery, started)
                metrics.EVENTS.labels(self.service, topic, "malformed").inc()
                return
            handler = self.registry.get(delivery.envelope.event_type)
            if handler is None:
                metrics.EVENTS.labels(self.service, topic, "skipped").inc()
                return
            outcome_name = await self._process_event(delivery, delivery.envelope, handler, started)
            metrics.EVENTS.labels(self.service, topic, outcome_name).inc()
        except _Abandoned:
            raise asyncio.CancelledError from None

    async def _process_event(
        self,
        delivery: Delivery,
        envelope: AnyEnvelope,
        handler: Callable[[HandlerContext, Any], Awaitable[Outcome]],
        started: datetime,
    ) -> str:
        seen = await self._durably("idempotency-read", lambda: self._seen(envelope))
        if seen.results is not None:
            prior = seen.results
            await self._durably("republish", lambda: self.publisher.send_all(prior))
            log.info(
                "%s %s already processed; re-published %d result(s)", envelope.event_type, envelope.event_id, len(prior)
            )
            return "duplicate"
        if not delivery.generation and seen.status == "failed":
            self._log_already_failed(envelope)
            return "duplicate"
        if (
            self.park_when_disconnected
            and self.registry.needs_connection(envelope.event_type)
            and seen.connection == "lost"
        ):
            await self._park(delivery, envelope, started, "organization's QuickBooks connection is lost")
            return "parked"
        ctx = HandlerContext(
            service=self.service,
            consumer_group=self.group,
            attempt=delivery.attempt,
            max_attempts=self.settings.max_attempts,
            topic=delivery.topic,
            partition=delivery.record.partition,
            offset=delivery.record.offset,
            db=self.db,
            log=logging.LoggerAdapter(log, {"event_id": str(envelope.event_id), "event_type": envelope.event_type}),
            resources=self.resources,
        )
        timer = asyncio.get_running_loop().time()
        try:
            outcome = await asyncio.wait_for(handler(ctx, envelope), self.settings.handler_timeout_seconds)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            metrics.HANDLE_SECONDS.labels(self.service, envelope.event_type).observe(
                asyncio.get_running_loop().time() - timer
            )
            return await self._on_failure(delivery, envelope, classify(exc), started)
        metrics.HANDLE_SECONDS.labels(self.service, envelope.event_type).observe(
            asyncio.get_running_loop().time() - timer
        )
        return await self._on_outcome(delivery, envelope, outcome, started)

    # ---- success -------------------------------------------------------------------------------------------------
    async def _on_outcome(self, delivery: Delivery, envelope: AnyEnvelope, outcome: Outcome, started: datetime) -> str:
        now = datetime.now(UTC)
        attempt = delivery.attempt
        max_attempts = self.settings.max_attempts
        extra = [record_for(e) for e in outcome.publish]
        if isinstance(outcome, Completed):
            result: AnyEnvelope | None = results.completed(
                envelope,
                service=self.service,
                attempt=attempt,
                max_attempts=max_attempts,
                action=outcome.action,
                qbo_id=outcome.qbo_id,
                qbo_doc_number=outcome.qbo_doc_number,
                warnings=outcome.warnings,
                needs_review=outcome.needs_review,
                now=now,
                generation=delivery.generation,
            )
            name = "completed"
        elif isinstance(outcome, Ignored | Deferred):
            deferred = isinstance(outcome, Deferred)
            result = results.status_changed(
                envelope,
                service=self.service,
                attempt=attempt,
                max_attempts=max_attempts,
                status="pending" if deferred else "ignored",
                now=now,
                generation=delivery.generation,
                message=outcome.reason,
                code=outcome.code,
            )
            name = "deferred" if deferred else "ignored"
        else:
            result = None
            name = "recorded"
        records = ([record_for(result)] if result is not None else []) + extra

        async def write() -> bool:
            try:
                async with self.db.transaction() as conn:
                    if outcome.persist is not None:
                        await outcome.persist(conn)
                    await ledger.record_processed(
                        conn,
                        group=self.group,
                        event_id=envelope.event_id,
                        event_type=envelope.event_type,
                        organization_id=envelope.organization_id,
                        outcome=name,
                        results=records,
                        now=now,
                    )
                    if not isinstance(outcome, Recorded):
                        entry = self._ledger_entry(delivery, envelope, status=name, now=now)
                        entry.completed = True
                        if isinstance(outcome, Completed):
                            entry.action = outcome.action
                            entry.qbo_id = outcome.qbo_id
                            entry.qbo_doc_number = outcome.qbo_doc_number
                            entry.warnings = [w.model_dump() for w in outcome.warnings]
                            entry.needs_review = outcome.needs_review
                        else:
                            entry.error_code = outcome.code
                            entry.error_message = outcome.reason
                        await ledger.upsert_ledger(conn, entry)
                        await ledger.insert_attempt(
                            conn,
                            ledger=entry.id,
                            attempt=attempt,
                            outcome=name,
                            started_at=started,
                            finished_at=now,
                            topic=delivery.topic,
                            partition=delivery.record.partition,
                            offset=delivery.record.offset,
                        )
            except IntegrityError:
                return False  # processed concurrently by a duplicate record: its results win
            return True

        try:
            written = await self._durably("record-outcome", write, retry_on=_is_connectivity_error)
        except (_Abandoned, asyncio.CancelledError):
            raise
        except Exception as exc:
            # The handler's own persistence failed for a reason that retrying in place cannot fix: treat it like a
            # handler failure (the ladder retries the whole record; QBO writes are idempotent by requestid).
            log.warning("recording the outcome of %s failed: %s", envelope.event_id, exc)
            return await self._on_failure(delivery, envelope, classify(exc), started)
        if not written:
            prior = await self._durably("idempotency-read", lambda: self._find_processed(envelope.event_id))
            if prior is None:
                # Not a concurrent copy of this event: the handler's own state change broke a constraint. That is
                # a failure to go through the ladder (never an acknowledged non-outcome).
                error = Classified(
                    "internal",
                    "integrity_error",
                    "recording the outcome broke a database constraint of the service's own tables",
                    None,
                    "IntegrityError",
                )
                return await self._on_failure(delivery, envelope, error, started)
            await self._durably("republish", lambda: self.publisher.send_all(prior))
            return "duplicate"
        await self._durably("publish-results", lambda: self.publisher.send_all(records))
        if isinstance(outcome, Recorded) and outcome.after_commit is not None:
            await self._durably("after-commit", outcome.after_commit)
        if name in ("completed", "ignored"):
            metrics.SYNC_LATENCY.labels(self.service, envelope.ENTITY_TYPE, name).observe(
                max((now - envelope.occurred_at).total_seconds(), 0.0)
            )
        await self.hooks.after_outcome(delivery, name)
        return name

    # ---- failure -------------------------------------------------------------------------------------------------
    async def _on_failure(self, delivery: Delivery, envelope: AnyEnvelope, error: Classified, started: datetime) -> str:
        attempt = delivery.attempt
        ctx_log = f"{envelope.event_type} {envelope.event_id} attempt {attempt}/{self.settings.max_attempts}"
        if error.error_class == "auth_lost":
            log.warning("%s: connection lost, parking (%s)", ctx_log, error.message)
            await self._park(delivery, envelope, started, error.message)
            return "parked"
        if is_laddered(error.error_class) and attempt < self.settings.max_attempts:
            log.info("%s failed (%s: %s); retrying later", ctx_log, error.error_class, error.message)
            await self._retry(delivery, envelope, error, started)
            return "retry"
        if await self._already_failed(delivery, envelope):  # a copy that was in flight beside it got there first
            return "duplicate"
        log.warning("%s failed (%s: %s); dead-lettered", ctx_log, error.error_class, error.message)
        await self._dead_letter(delivery, envelope, error, started)
        return "dead_letter"

    async def _retry(self, delivery: Delivery, envelope: AnyEnvelope, error: Classified, started: datetime) -> None:
        attempt = delivery.attempt
        tier = attempt  # attempt n failed -> tier n holds attempt n + 1
        now = datetime.now(UTC)
        due = now + timedelta(seconds=self.settings.retry_delays_seconds[tier - 1])
        first_failure = delivery.retry.first_failure_at if delivery.retry else now
        headers = h.merge(
            h.without_qbsync_context(delivery.headers),
            self._origin_headers(delivery),
            {
                h.ATTEMPT: str(attempt + 1),
                h.FIRST_FAILURE_AT: h.format_time(first_failure),
                h.DUE_AT: h.format_time(due),
            },
            self._error_headers(error, now),
        )
        record = OutboundRecord(
            retry_topic(self.service, tier), delivery.record.key, delivery.record.value or b"", headers
        )
        await self._durably("send-retry", lambda: self.publisher.send(record))
        metrics.RETRIES.labels(self.service, str(tier)).inc()

        entry = self._ledger_entry(delivery, envelope, status="retrying", now=now)
        entry.next_attempt_at = due
        await self._record_step(delivery, entry, "retry", error, started, now)
        status = results.status_changed(
            envelope,
            service=self.service,
            attempt=attempt,
            max_attempts=self.settings.max_attempts,
            status="retrying",
            now=now,
            generation=delivery.generation,
            next_attempt_at=due,
            error=error,
        )
        await self._durably("publish-status", lambda: self.publisher.publish(status))
        await self.hooks.after_outcome(delivery, "retry")

    async def _dead_letter(
        self, delivery: Delivery, envelope: AnyEnvelope, error: Classified, started: datetime
    ) -> None:
        now = datetime.now(UTC)
        entry = self._ledger_entry(delivery, envelope, status="failed", now=now)
        entry.manual_retry_available = True
        await self._send_dead_letter(delivery, entry, error, started, now)
        failure = results.failed(
            envelope,
            service=self.service,
            attempt=delivery.attempt,
            max_attempts=self.settings.max_attempts,
            error=error,
            dead_letter_topic=self._dlt,
            now=now,
            generation=delivery.generation,
        )
        await self._durably("publish-failed", lambda: self.publisher.publish(failure))
        metrics.SYNC_LATENCY.labels(self.service, envelope.ENTITY_TYPE, "failed").observe(
            max((now - envelope.occurred_at).total_seconds(), 0.0)
        )
        await self.hooks.after_outcome(delivery, "dead_letter")

    async def _dead_letter_malformed(self, delivery: Delivery, started: datetime) -> None:
        error = delivery.error or DecodeError("schema_violation", "undecodable record")
        now = datetime.now(UTC)
        classified = Classified("malformed", error.reason, error.message, _MALFORMED_HINT, "DecodeError")
        identity = _identity_of(delivery)
        topic, partition, offset = delivery.source
        entry = ledger.LedgerEntry(
            service=self.service,
            event_id=identity["event_id"],
            event_type=identity["event_type"],
            organization_id=identity["organization_id"],
            entity_type="unknown",
            entity_id=identity["entity_id"],
            entity_version=None,
            direction=self.direction,
            status="failed",
            attempts=delivery.attempt,
            max_attempts=self.settings.max_attempts,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            now=now,
            last_attempt_at=started,
        )
        metrics.MALFORMED.labels(self.service, error.reason).inc()
        await self._send_dead_letter(delivery, entry, classified, started, now)
        log.warning(
            "malformed record %s[%d]@%d dead-lettered (%s: %s)",
            delivery.topic,
            delivery.record.partition,
            delivery.record.offset,
            error.reason,
            error.message,
        )
        await self.hooks.after_outcome(delivery, "dead_letter")

    async def _send_dead_letter(
        self, delivery: Delivery, entry: ledger.LedgerEntry, error: Classified, started: datetime, now: datetime
    ) -> None:
        """Hand the record to the dead-letter topic (send acknowledged first), then record it in the ledger."""
        record = self._dead_letter_record(delivery, error, now)
        await self._durably("send-dead-letter", lambda: self.publisher.send(record))
        metrics.DEAD_LETTERS.labels(self.service, error.error_class).inc()
        entry.dead_letter_topic = self._dlt
        await self._record_step(delivery, entry, "dead_letter", error, started, now)

    async def _record_step(
        self,
        delivery: Delivery,
        entry: ledger.LedgerEntry,
        outcome: str,
        error: Classified,
        started: datetime,
        now: datetime,
        *,
        also: Callable[[AsyncConnection], Awaitable[None]] | None = None,
    ) -> None:
        """One transaction: ``also`` (e.g. the parked row), the ledger row with the error, and the attempt row."""

        async def write() -> None:
            async with self.db.transaction() as conn:
                if also is not None:
                    await also(conn)
                self._apply_error(entry, error)
                await ledger.upsert_ledger(conn, entry)
                await ledger.insert_attempt(
                    conn, ledger=entry.id, outcome=outcome, **self._attempt_fields(delivery, error, started, now)
                )

        await self._durably(f"record-{outcome.replace('_', '-')}", write)

    # ---- parking -------------------------------------------------------------------------------------------------
    async def _park(self, delivery: Delivery, envelope: AnyEnvelope, started: datetime, reason: str) -> None:
        now = datetime.now(UTC)
        error = Classified(
            "auth_lost", "auth_lost", reason, "Reconnect QuickBooks; parked work resumes after reconnect.", "AuthLost"
        )

        async def park(conn: AsyncConnection) -> None:
            await ledger.park(
                conn,
                group=self.group,
                organization_id=envelope.organization_id,
                event_id=envelope.event_id,
                event_type=envelope.event_type,
                topic=delivery.topic,
                partition=delivery.record.partition,
                offset=delivery.record.offset,
                key=delivery.record.key,
                value=delivery.record.value or b"",
                headers=delivery.headers,
                attempt=delivery.attempt,
                reason=reason,
                # The attempt's start: a reconnect recorded after this moment releases the record.
                now=started,
            )

        entry = self._ledger_entry(delivery, envelope, status="parked", now=now)
        await self._record_step(delivery, entry, "parked", error, started, now, also=park)
        status = results.status_changed(
            envelope,
            service=self.service,
            attempt=delivery.attempt,
            max_attempts=self.settings.max_attempts,
            status="parked",
            now=now,
            generation=delivery.generation,
            error=error,
        )
        await self._durably("publish-status", lambda: self.publisher.publish(status))
        await self.hooks.after_outcome(delivery, "parked")

    async def _seen(self, envelope: AnyEnvelope) -> ledger.Seen:
        async with self.db.connect() as conn:
            return await ledger.seen(
                conn,
                group=self.group,
                service=self.service,
                event_id=envelope.event_id,
                organization_id=envelope.organization_id,
            )

    async def _already_failed(self, delivery: Delivery, envelope: AnyEnvelope) -> bool:
        """Whether another copy of this event already ended in the dead-letter topic (one terminal outcome each).

        Two copies of one event can be in flight at once (a redelivery on the main topic beside the first copy in a
        retry tier); without this each would fail it, publish ``SyncFailed`` and write a dead letter. An operator's
        replay or retry carries a generation of its own and is always handled.
        """
        if delivery.generation:
            return False

        async def read() -> str | None:
            async with self.db.connect() as conn:
                return await ledger.event_status(conn, self.service, envelope.event_id)

        if await self._durably("ledger-read", read) != "failed":
            return False
        self._log_already_failed(envelope)
        return True

    @staticmethod
    def _log_already_failed(envelope: AnyEnvelope) -> None:
        log.info(
            "%s %s already failed and dead-lettered; this copy is acknowledged", envelope.event_type, envelope.event_id
        )

    async def _find_processed(self, event_id: UUID) -> list[OutboundRecord] | None:
        async with self.db.connect() as conn:
            return await ledger.find_processed(conn, self.group, event_id)

    # ---- helpers -------------------------------------------------------------------------------------------------
    def _ledger_entry(
        self, delivery: Delivery, envelope: AnyEnvelope, *, status: str, now: datetime
    ) -> ledger.LedgerEntry:
        topic, partition, offset = delivery.source
        return ledger.LedgerEntry(
            service=self.service,
            event_id=envelope.event_id,
            event_type=envelope.event_type,
            organization_id=envelope.organization_id,
            entity_type=envelope.ENTITY_TYPE,
            entity_id=envelope.entity_id,
            entity_version=envelope.entity_version,
            direction=self.direction,
            status=status,
            attempts=delivery.attempt,
            max_attempts=self.settings.max_attempts,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            now=now,
            occurred_at=envelope.occurred_at,
            last_attempt_at=now,
        )

    @staticmethod
    def _apply_error(entry: ledger.LedgerEntry, error: Classified) -> None:
        entry.error_class = error.error_class
        entry.error_code = error.code
        entry.error_message = error.message
        entry.hint = error.hint

    @staticmethod
    def _attempt_fields(delivery: Delivery, error: Classified, started: datetime, now: datetime) -> dict[str, Any]:
        return {
            "attempt": delivery.attempt,
            "started_at": started,
            "finished_at": now,
            "topic": delivery.topic,
            "partition": delivery.record.partition,
            "offset": delivery.record.offset,
            "error_class": error.error_class,
            "error_code": error.code,
            "error_message": error.message,
        }

    def _origin_headers(self, delivery: Delivery) -> h.Headers:
        topic, partition, offset = delivery.source
        timestamp = delivery.headers.get(h.ORIGINAL_TIMESTAMP) if delivery.retry else str(delivery.record.timestamp)
        return {
            h.ORIGINAL_TOPIC: topic,
            h.ORIGINAL_PARTITION: str(partition),
            h.ORIGINAL_OFFSET: str(offset),
            h.ORIGINAL_TIMESTAMP: timestamp or "",
            h.CONSUMER_GROUP: self.group,
            h.SERVICE: self.service,
            **{k: delivery.headers[k] for k in (h.REPLAYED_AT, h.REPLAYED_FROM) if k in delivery.headers},
        }

    @staticmethod
    def _error_headers(error: Classified, now: datetime) -> h.Headers:
        return {
            h.ERROR_CLASS: error.error_class,
            h.ERROR_CODE: error.code or "",
            h.ERROR_MESSAGE: error.message,
            h.EXCEPTION_TYPE: error.exception_type,
            h.FAILED_AT: h.format_time(now),
        }

    def _dead_letter_record(self, delivery: Delivery, error: Classified, now: datetime) -> OutboundRecord:
        first_failure = delivery.retry.first_failure_at if delivery.retry else now
        headers = h.merge(
            h.without_qbsync_context(delivery.headers),
            self._origin_headers(delivery),
            {h.ATTEMPT: str(delivery.attempt), h.FIRST_FAILURE_AT: h.format_time(first_failure)},
            self._error_headers(error, now),
        )
        return OutboundRecord(self._dlt, delivery.record.key, delivery.record.value or b"", headers)

    async def _durably(
        self,
        step: str,
        action: Callable[[], Awaitable[T]],
        *,
        retry_on: Callable[[BaseException], bool] = lambda _exc: True,
    ) -> T:
        """Run a durable step until it succeeds; retried in place (capped back-off) while the service runs."""
        delay = self.settings.outcome_retry_initial_seconds
        while True:
            try:
                return await action()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not retry_on(exc):
                    raise
                metrics.OUTCOME_WRITE_RETRIES.labels(self.service, step).inc()
                log.warning("%s failed (%s: %s); retrying in %.1fs", step, type(exc).__name__, exc, delay)
            if self.stopping.is_set():
                raise _Abandoned(step)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            if self.stopping.is_set():
                raise _Abandoned(step)
            delay = min(delay * 2, self.settings.outcome_retry_max_seconds)


class ProcessorHooks:
    """Extension points for observability and tests (no behaviour by default)."""

    async def after_outcome(self, delivery: Delivery, outcome: str) -> None:
        return None


_MALFORMED_HINT = (
    "The producer sent a record that breaks the event contract (see docs/contracts). Fix the producer; the record "
    "is kept in the dead-letter topic with the reason."
)


def _is_connectivity_error(exc: BaseException) -> bool:
    """Database trouble that may pass (connection lost, locked, server gone) — retried in place."""
    return is_database_outage(exc) or isinstance(exc, OSError | ConnectionError | TimeoutError)


def _readable_headers(raw: Sequence[tuple[str, bytes | None]] | None) -> h.Headers:
    """Best-effort UTF-8 view of damaged headers, for the dead-letter copy (undecodable values base64-encoded)."""
    readable: h.Headers = {}
    for name, value in raw or ():
        if value is None:
            readable[f"{name}.null"] = ""
            continue
        try:
            readable.setdefault(name.lower(), value.decode("utf-8"))
        except UnicodeDecodeError:
            readable[f"{name.lower()}.base64"] = base64.b64encode(value).decode("ascii")
    return readable


_SYNTHETIC = uuid.UUID("a4b9a5c2-70a3-4f5a-8f4e-2f1f3f7b9e01")


def _identity_of(delivery: Delivery) -> dict[str, Any]:
    """What can be salvaged from a malformed record for its ledger row.

    The ledger id is always derived from the record's position, never from an ``event_id`` inside the bad record:
    a malformed record must not be able to overwrite the ledger row of a valid event that carries the same id.
    Organization and entity ids are kept when they parse, so operators can see whose record failed.
    """
    topic, partition, offset = delivery.source
    identity: dict[str, Any] = {
        "event_id": uuid.uuid5(_SYNTHETIC, f"{topic}:{partition}:{offset}"),
        "event_type": "(malformed)",
        "organization_id": None,
        "entity_id": None,
    }
    try:
        document = json.loads(delivery.record.value or b"")
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested deeper than the stack
        return identity
    if not isinstance(document, dict):
        return identity
    for name in ("organization_id", "entity_id"):
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            if isinstance(document.get(name), str):
                identity[name] = UUID(document[name])
    if isinstance(document.get("event_type"), str):
        identity["event_type"] = document["event_type"][:128]
    return identity
