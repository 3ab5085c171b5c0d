"""A consumer process for the crash test: handles CustomerCreated, and on its first run stops dead after the outcome
is durable (effect + idempotency row + result published) but before the offset is committed."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from qbsync.contracts.batchly import CustomerCreated
from qbsync.runtime import Completed, HandlerContext, HandlerRegistry
from qbsync.runtime.processor import Delivery, ProcessorHooks
from qbsync.settings import DatabaseSettings, KafkaSettings, RuntimeSettings, TopicSettings
from qbsync.topics import BATCHLY_CUSTOMERS
from tests.integration.harness import insert_effect, running_runtime


class FreezeAfterOutcome(ProcessorHooks):
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    async def after_outcome(self, delivery: Delivery, outcome: str) -> None:
        self.marker.write_text(outcome)
        await asyncio.Event().wait()  # never returns: the offset is never committed; the test SIGKILLs us here


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--data-dir")
    parser.add_argument("--db-url")
    parser.add_argument("--schema")
    parser.add_argument("--freeze-marker")
    parser.add_argument("--ready-marker", required=True)
    args = parser.parse_args()

    registry = HandlerRegistry()

    @registry.on(CustomerCreated)
    async def handle(ctx: HandlerContext, event: CustomerCreated) -> Completed:
        async def persist(conn: Any) -> None:
            await insert_effect(conn, event.event_id, event.entity_id, "created")

        return Completed(action="created", qbo_id="99", persist=persist)

    database = (
        DatabaseSettings(url=SecretStr(args.db_url), schema_name=args.schema)
        if args.db_url
        else DatabaseSettings(data_dir=Path(args.data_dir))
    )
    hooks = FreezeAfterOutcome(Path(args.freeze_marker)) if args.freeze_marker else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with running_runtime(
        service=args.service,
        topics=[BATCHLY_CUSTOMERS],
        registry=registry,
        kafka=KafkaSettings(bootstrap_servers=args.bootstrap, session_timeout_ms=6_000, heartbeat_interval_ms=1_000),
        topic_settings=TopicSettings(prefix=args.prefix, partitions=3, retry_partitions=3),
        database=database,
        runtime_settings=RuntimeSettings(retry_delays_seconds=(0.5, 1.0), commit_interval_ms=50),
        hooks=hooks,
        wait_assigned=1,
    ):
        Path(args.ready_marker).write_text("ready")
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
