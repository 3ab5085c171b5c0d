"""A consumer process SIGKILLed after its side effect but before its offset commit applies the effect exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qbsync.settings import DatabaseSettings, KafkaSettings, TopicSettings
from qbsync.topics import BATCHLY_CUSTOMERS, QBSYNC_SYNC_RESULTS
from tests.integration.harness import Kafka, customer_created, open_database, service_topic_names, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.crash_consumer", *args],
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _wait_file(path: Path, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return
        if process.poll() is not None:
            raise AssertionError(f"consumer process exited early with {process.returncode}")
        time.sleep(0.05)
    raise AssertionError(f"{path.name} did not appear within {timeout}s")


async def test_sigkill_after_side_effect_before_commit_redelivers_and_applies_the_effect_once(
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    database_settings: DatabaseSettings,
    tmp_path: Path,
) -> None:
    service = "crash-test"
    if database_settings.url is not None:
        db_args = ["--db-url", database_settings.url.get_secret_value(), "--schema", str(database_settings.schema_name)]
    else:
        db_args = ["--data-dir", str(database_settings.data_dir)]
    common = ["--bootstrap", kafka_settings.bootstrap_servers, "--prefix", topic_settings.prefix, "--service", service]
    log = tmp_path / "consumer.log"
    event = customer_created()

    async with Kafka(kafka_settings, topic_settings) as kafka:
        await kafka.create(*service_topic_names(service, [BATCHLY_CUSTOMERS], 2), QBSYNC_SYNC_RESULTS)
        frozen = tmp_path / "frozen"
        first = _start([*common, *db_args, "--freeze-marker", str(frozen), "--ready-marker", str(tmp_path / "r1")], log)
        try:
            _wait_file(tmp_path / "r1", first)
            await kafka.publish(event)
            _wait_file(frozen, first)
            assert frozen.read_text() == "completed"
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()

        db = await open_database(service, database_settings)
        try:
            from sqlalchemy import select

            from tests.integration.harness import effects

            async with db.connect() as conn:
                assert len((await conn.execute(select(effects))).all()) == 1, "the effect was applied before the kill"
            committed = await kafka.committed(f"qbsync.{service}", BATCHLY_CUSTOMERS)
            assert all(not offset for offset in committed.values()), f"nothing committed before the kill: {committed}"

            second = _start([*common, *db_args, "--ready-marker", str(tmp_path / "r2")], log)
            try:
                _wait_file(tmp_path / "r2", second)
                results = await kafka.read(QBSYNC_SYNC_RESULTS, expect=2, timeout=60)
                ids = {json.loads(r.value or b"")["event_id"] for r in results}
                assert len(results) == 2
                assert len(ids) == 1, "the redelivery re-published the same result, not a new one"

                async def committed_through() -> bool:
                    ends = await kafka.end_offsets(BATCHLY_CUSTOMERS)
                    marks = await kafka.committed(f"qbsync.{service}", BATCHLY_CUSTOMERS)
                    return all((marks.get(p) or 0) == end for p, end in ends.items())

                await wait_for(committed_through, timeout=30)
                async with db.connect() as conn:
                    rows = (await conn.execute(select(effects))).all()
                assert len(rows) == 1, "the effect was applied exactly once"
                assert rows[0].event_id == event.event_id
            finally:
                second.send_signal(signal.SIGTERM)
                try:
                    assert second.wait(30) == 0, "graceful shutdown exits 0"
                finally:
                    if second.poll() is None:
                        second.kill()
        finally:
            await db.close()
