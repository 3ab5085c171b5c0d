"""Wait for what the services say about events on ``qbsync.sync-results``.

The watcher takes its position at the end of every partition *before* anything is published, so every answer it
reads is an answer to what was sent after it started — including a result re-published from an idempotency row
(an event that had completed before), whose ``occurred_at`` is old.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition

from qbsync.runtime.kafka import client_options, end_offsets
from qbsync.settings import Settings
from qbsync.topics import QBSYNC_SYNC_RESULTS

__all__ = ["Answer", "ResultWatcher", "Verdict"]

Verdict = Literal["succeeded", "failed", "retrying", "parked", "pending", "ignored"]


@dataclass(frozen=True, slots=True)
class Answer:
    source_event_id: UUID
    verdict: Verdict
    service: str
    entity_type: str
    message: str
    qbo_id: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[UUID, str]:
        return self.source_event_id, self.service

    @property
    def succeeded(self) -> bool:
        return self.verdict in ("succeeded", "ignored")


class ResultWatcher:
    """``async with ResultWatcher(settings) as watcher: ...publish...; await watcher.wait(keys, wait_seconds=30)``."""

    def __init__(self, settings: Settings) -> None:
        self._topic = settings.topics.prefix + QBSYNC_SYNC_RESULTS
        self._consumer = AIOKafkaConsumer(
            **client_options(settings.kafka, "ops-results"),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
        )

    async def __aenter__(self) -> Self:
        try:
            await self._consumer.start()
        except BaseException:
            await self._consumer.stop()  # a failed start leaves its connections open otherwise
            raise
        if self._topic not in await self._consumer.topics():
            await self._consumer.stop()
            raise LookupError(f"topic {self._topic} does not exist (is the platform running on this broker?)")
        partitions = [
            TopicPartition(self._topic, p) for p in sorted(self._consumer.partitions_for_topic(self._topic) or ())
        ]
        self._consumer.assign(partitions)
        ends = await end_offsets(self._consumer, partitions)
        for tp in partitions:
            self._consumer.seek(tp, ends[tp])
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._consumer.stop()

    async def wait(
        self,
        keys: Iterable[tuple[UUID, str]],
        *,
        wait_seconds: float,
        on_answer: Callable[[Answer, int, int], None] | None = None,
    ) -> dict[tuple[UUID, str], Answer]:
        """The first decisive answer of each (event id, service) (none for those unanswered after ``wait_seconds``)."""
        wanted = set(keys)
        answers: dict[tuple[UUID, str], Answer] = {}
        deadline = time.monotonic() + wait_seconds
        while wanted - set(answers) and time.monotonic() < deadline:
            remaining = max(deadline - time.monotonic(), 0.0)
            batch = await self._consumer.getmany(timeout_ms=int(min(remaining, 0.5) * 1000) or 1, max_records=500)
            for records in batch.values():
                for record in records:
                    answer = _answer(record.value)
                    if answer is None or answer.key not in wanted or answer.key in answers:
                        continue
                    answers[answer.key] = answer
                    if on_answer is not None:
                        on_answer(answer, len(answers), len(wanted))
            await asyncio.sleep(0)
        return answers


def _answer(value: bytes | None) -> Answer | None:
    try:
        document: dict[str, Any] = json.loads(value or b"")
        payload: dict[str, Any] = document["payload"]
        source = UUID(payload["source_event_id"])
    except (ValueError, KeyError, TypeError):
        return None
    event_type = document.get("event_type")
    base = {
        "source_event_id": source,
        "service": payload.get("service", ""),
        "entity_type": payload.get("entity_type", ""),
    }
    if event_type == "SyncCompleted":
        warnings = tuple(str(w.get("message", "")) for w in payload.get("warnings") or [])
        action = payload.get("action", "")
        return Answer(verdict="succeeded", message=action, qbo_id=payload.get("qbo_id"), warnings=warnings, **base)
    if event_type == "SyncFailed":
        message = f"{payload.get('error_class')}: {payload.get('message')}"
        return Answer(verdict="failed", message=message, **base)
    if event_type == "SyncStatusChanged":
        status = payload.get("status")
        message = payload.get("message") or ""
        if status == "retrying":
            return Answer(
                verdict="retrying", message=f"{message} (next attempt {payload.get('next_attempt_at')})", **base
            )
        if status in ("parked", "ignored", "pending"):
            return Answer(verdict=status, message=message, **base)
    return None
