"""The seed's own design (``qbo-integration-strategy.md``, "Sync Queue Table" and "Sync Process Flow"), minimally:

1. a trigger adds a ``pending`` row to ``qbo_sync_queue`` for each new invoice;
2. a sync worker runs every minute: select ``pending`` rows (limit 50), mark them ``processing``, and for each one
   call QuickBooks (one create, one call at a time), then mark it ``completed`` with the QuickBooks id — or, on
   failure, count the attempt and put it back to ``pending`` (``failed`` after ``max_attempts``).

The queue is a SQLite table (the seed's is PostgreSQL; either is far faster than the 60 s poll that dominates). The
"Edge Function" is an in-process call: it maps the invoice (the same mapping qbsync uses) and POSTs it. Passes start
on the minute (cron), whether or not the previous pass found work. Nothing here is shipped.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from qbsync.qbo.client import encode_json

__all__ = ["PassTiming", "SeedDesignRun", "SeedQueueWorker"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS qbo_sync_queue (
  id TEXT PRIMARY KEY,
  organization_id TEXT NOT NULL,
  entity_type TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  sync_direction TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER DEFAULT 0,
  max_attempts INTEGER DEFAULT 3,
  last_attempt_at REAL,
  error_message TEXT,
  qbo_id TEXT,
  payload TEXT NOT NULL,
  created_at REAL NOT NULL,
  completed_at REAL
)
"""


@dataclass(frozen=True, slots=True)
class PassTiming:
    started_s: float  # seconds since the run started
    duration_s: float
    synced: int
    failed: int


@dataclass
class SeedDesignRun:
    """What a bounded run of the worker did."""

    poll_interval_s: float
    pass_limit: int
    passes: list[PassTiming] = field(default_factory=list)
    call_seconds: list[float] = field(default_factory=list)

    @property
    def synced(self) -> int:
        return sum(p.synced for p in self.passes)

    @property
    def elapsed_s(self) -> float:
        """From the first pass's start to the end of the last pass (the moment its last invoice was synced)."""
        last = self.passes[-1]
        return last.started_s + last.duration_s

    def projected_seconds(self, invoices: int) -> float:
        """Time this design needs for ``invoices`` queued at once: one pass per interval, 50 per pass, each pass as
        long as the measured passes (a call at a time); exact for the measured passes, extrapolated after them."""
        per_call = sum(self.call_seconds) / len(self.call_seconds)
        pass_s = self.pass_limit * per_call
        full_passes, rest = divmod(invoices, self.pass_limit)
        passes = full_passes + (1 if rest else 0)
        last = (rest or self.pass_limit) * per_call
        interval = max(self.poll_interval_s, pass_s)  # a pass longer than the interval delays the next one
        return (passes - 1) * interval + last


class SeedQueueWorker:
    """The queue and its once-a-minute worker for one organization's QuickBooks company."""

    def __init__(
        self,
        db_path: Path,
        *,
        base_url: str,
        realm_id: str,
        access_token: str,
        poll_interval_s: float = 60.0,
        pass_limit: int = 50,
    ) -> None:
        self._db = sqlite3.connect(db_path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._http = httpx.Client(
            base_url=f"{base_url}/v3/company/{realm_id}",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            timeout=60,
        )
        self.poll_interval_s = poll_interval_s
        self.pass_limit = pass_limit

    def close(self) -> None:
        self._http.close()
        self._db.close()

    def enqueue(self, organization_id: uuid.UUID, invoices: Sequence[tuple[uuid.UUID, dict[str, Any]]]) -> None:
        """The trigger: a ``pending`` row per new invoice (its QuickBooks body, as the Edge Function would build it)."""
        now = time.time()
        self._db.executemany(
            "INSERT INTO qbo_sync_queue (id, organization_id, entity_type, entity_id, sync_direction, status, "
            "payload, created_at) VALUES (?, ?, 'invoice', ?, 'push', 'pending', ?, ?)",
            [
                (str(uuid.uuid4()), str(organization_id), str(entity_id), encode_json(body).decode(), now)
                for entity_id, body in invoices
            ],
        )
        self._db.commit()

    def run(self, *, max_passes: int, sleep: Callable[[float], None] = time.sleep) -> SeedDesignRun:
        """Passes on the minute until the queue is empty or ``max_passes`` ran."""
        run = SeedDesignRun(self.poll_interval_s, self.pass_limit)
        origin = time.monotonic()
        for number in range(max_passes):
            wait = origin + number * self.poll_interval_s - time.monotonic()
            if wait > 0:
                sleep(wait)
            started = time.monotonic()
            synced, failed = self._one_pass(run.call_seconds)
            run.passes.append(PassTiming(started - origin, time.monotonic() - started, synced, failed))
            if not self._pending():
                break
        return run

    def _pending(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM qbo_sync_queue WHERE status = 'pending'").fetchone()[0])

    def _one_pass(self, call_seconds: list[float]) -> tuple[int, int]:
        rows = self._db.execute(
            "SELECT id, payload FROM qbo_sync_queue WHERE status = 'pending' ORDER BY created_at LIMIT ?",
            (self.pass_limit,),
        ).fetchall()
        self._db.executemany(
            "UPDATE qbo_sync_queue SET status = 'processing' WHERE id = ?", [(row_id,) for row_id, _ in rows]
        )
        self._db.commit()
        synced = failed = 0
        for row_id, payload in rows:
            started = time.monotonic()
            response = self._http.post(
                "/invoice",
                params={"minorversion": "75"},
                content=payload.encode(),
                headers={"Content-Type": "application/json"},
            )
            call_seconds.append(time.monotonic() - started)
            if response.status_code == 200:
                qbo_id = str(json.loads(response.content)["Invoice"]["Id"])
                self._db.execute(
                    "UPDATE qbo_sync_queue SET status = 'completed', qbo_id = ?, attempts = attempts + 1, "
                    "last_attempt_at = ?, completed_at = ? WHERE id = ?",
                    (qbo_id, time.time(), time.time(), row_id),
                )
                synced += 1
            else:
                self._db.execute(
                    "UPDATE qbo_sync_queue SET attempts = attempts + 1, last_attempt_at = ?, error_message = ?, "
                    "status = CASE WHEN attempts + 1 >= max_attempts THEN 'failed' ELSE 'pending' END WHERE id = ?",
                    (time.time(), response.text[:500], row_id),
                )
                failed += 1
            self._db.commit()
        return synced, failed
