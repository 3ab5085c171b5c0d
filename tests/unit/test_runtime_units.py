"""Runtime building blocks without a broker: the partition worker, classification, headers, log redaction."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from qbsync.observability.logging import RedactingFilter, redact, register_secret
from qbsync.qbo import errors as qbo
from qbsync.runtime import headers as h
from qbsync.runtime.errors import AuthLost, DependencyNotReady, PermanentError, TransientError, classify, is_laddered
from qbsync.runtime.partition import PartitionWorker, Prepared


async def test_worker_runs_different_keys_concurrently_same_key_in_order_and_bounds_concurrency() -> None:
    running = 0
    peak = 0
    order: list[tuple[str, int]] = []
    gates: dict[int, asyncio.Event] = {}

    async def process(item: Prepared[str]) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        order.append((item.item, item.offset))
        await gates.setdefault(item.offset, asyncio.Event()).wait()
        running -= 1

    worker: PartitionWorker[str] = PartitionWorker("t[0]", process, max_in_flight=3)
    worker.start()
    keys = ["a", "b", "a", "c", "d", "b"]
    for offset, key in enumerate(keys):
        worker.enqueue(Prepared(offset=offset, key=key, due=None, item=key))
    await asyncio.sleep(0.05)
    assert [o for _, o in order] == [0, 1, 3], "a@2 waits behind a@0; d@4 waits for a free slot"
    assert peak == 3
    for offset in (1, 3):  # finish out of order: b@1 and c@3 before a@0
        gates.setdefault(offset, asyncio.Event()).set()
    await asyncio.sleep(0.05)
    assert worker.watermark is None, "offset 0 is not finished, so nothing may be committed"
    gates.setdefault(0, asyncio.Event()).set()
    await asyncio.sleep(0.05)
    assert worker.watermark == 2, "0 and 1 finished; 2 (a) is still running"
    for offset in range(6):  # a@2 starts when a@0 ends and d@4 / b@5 take free slots; release everything
        gates.setdefault(offset, asyncio.Event()).set()
    await asyncio.sleep(0.1)
    assert worker.watermark == 6
    assert [o for k, o in order if k == "a"] == [0, 2]
    assert [o for k, o in order if k == "b"] == [1, 5]
    assert await worker.stop(1) == 6


async def test_worker_waits_for_due_time_without_blocking_and_stop_cancels_unfinished_work() -> None:
    loop = asyncio.get_running_loop()
    started: dict[int, float] = {}
    release = asyncio.Event()

    async def process(item: Prepared[None]) -> None:
        started[item.offset] = loop.time()
        if item.offset == 2:
            await release.wait()

    worker: PartitionWorker[None] = PartitionWorker("tier[0]", process, max_in_flight=4)
    worker.start()
    t0 = loop.time()
    worker.enqueue(Prepared(offset=0, key="x", due=t0 + 0.3, item=None))
    worker.enqueue(Prepared(offset=1, key="y", due=t0, item=None))  # behind a later-due head: waits for it
    await asyncio.sleep(0.1)
    assert started == {}
    await asyncio.sleep(0.4)
    assert started[0] >= t0 + 0.3
    assert started[1] >= started[0]
    worker.enqueue(Prepared(offset=2, key="z", due=None, item=None))
    await asyncio.sleep(0.05)
    assert 2 in started
    assert await worker.stop(0.1) == 2, "the cancelled record is not committed"


def test_classification_decides_every_path() -> None:
    cases = [
        (TransientError("x"), "transient"),
        (DependencyNotReady("customer not synced yet"), "dependency"),
        (PermanentError("bad email", field="email"), "permanent"),
        (AuthLost("reconnect"), "auth_lost"),
        (qbo.QboAuthLostError("needs reconnect"), "auth_lost"),
        (qbo.QboTransportError("connection reset"), "transient"),
        (TimeoutError(), "transient"),
        (KeyError("bug"), "internal"),
        (DBAPIError("SELECT 1", None, ConnectionResetError(), connection_invalidated=True), "transient"),
        (OperationalError("SELECT 1", None, Exception("database is locked")), "transient"),
        (IntegrityError("INSERT", None, Exception("duplicate key")), "internal"),
    ]
    for exc, expected in cases:
        assert classify(exc).error_class == expected, exc
    assert is_laddered("transient")
    assert is_laddered("dependency")
    assert is_laddered("internal")
    assert not is_laddered("permanent")
    assert not is_laddered("auth_lost")


def test_classification_follows_the_qbo_error_hierarchy() -> None:
    from httpx import Headers

    def fault(status: int, code: str) -> qbo.QboError:
        body = {"Fault": {"Error": [{"Message": "m", "Detail": "d", "code": code}], "type": "ValidationFault"}}
        import json

        return qbo.error_from_response(status, Headers({"content-type": "application/json"}), json.dumps(body).encode())

    assert classify(fault(429, "3001")).error_class == "transient"
    assert classify(fault(503, "10000")).error_class == "transient"
    assert classify(fault(400, "6240")).error_class == "permanent"
    assert classify(fault(400, "6140")).error_class == "permanent"
    assert classify(fault(400, "5010")).error_class == "transient"
    assert classify(fault(400, "2050")).error_class == "permanent"


def test_retry_context_round_trips_and_damage_is_reported() -> None:
    due = datetime.now(UTC) + timedelta(seconds=30)
    headers = {
        h.ORIGINAL_TOPIC: "batchly.invoices",
        h.ORIGINAL_PARTITION: "3",
        h.ORIGINAL_OFFSET: "42",
        h.ATTEMPT: "2",
        h.FIRST_FAILURE_AT: h.format_time(due - timedelta(seconds=30)),
        h.DUE_AT: h.format_time(due),
    }
    context = h.RetryContext.from_headers(headers)
    assert context is not None
    assert (context.original_topic, context.original_partition, context.original_offset, context.attempt) == (
        "batchly.invoices",
        3,
        42,
        2,
    )
    assert abs((context.due_at - due).total_seconds()) < 0.001
    assert h.RetryContext.from_headers({}) is None
    with pytest.raises(h.HeaderError):
        h.RetryContext.from_headers({**headers, h.ATTEMPT: "two"})
    with pytest.raises(h.HeaderError):
        h.decode_headers([("x", b"\xff")])
    with pytest.raises(h.HeaderError):
        h.decode_headers([("x", b"1"), ("X", b"2")])


def test_log_redaction_masks_tokens_credentials_and_registered_secrets(caplog: pytest.LogCaptureFixture) -> None:
    register_secret("client-secret-abcdef")
    lines = [
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.signature",
        "POST body refresh_token=AB11700000000abcdefghijk&grant_type=refresh_token",
        '{"access_token": "at-1234567890abcdef", "refresh_token": "AB11rt999999999"}',
        "db postgresql+asyncpg://qbsync:hunter2-pass@db:5432/qbsync",
        "client client-secret-abcdef used",
        "Basic cWJzeW5jLWRldi1jbGllbnQ6cWJzeW5jLWRldi1zZWNyZXQ=",
    ]
    for line in lines:
        assert "[REDACTED]" in redact(line), line
    for secret in (
        "eyJhbGciOiJIUzI1NiJ9",
        "AB11700000000abcdefghijk",
        "at-1234567890abcdef",
        "AB11rt999999999",
        "hunter2-pass",
        "client-secret-abcdef",
        "cWJzeW5jLWRldi1jbGllbnQ6",
    ):
        assert all(secret not in redact(line) for line in lines)
    logger = logging.getLogger("redaction-test")
    handler_filter = RedactingFilter()
    record = logger.makeRecord("x", logging.INFO, __file__, 1, "token %s", ("Bearer abcdefgh12345678",), None)
    handler_filter.filter(record)
    assert record.getMessage() == "token Bearer [REDACTED]"
