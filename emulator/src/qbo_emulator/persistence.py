"""The optional SQLite state file (``--state-file``): companies, rows, OAuth grants and the clock survive a restart.

Rows are written incrementally (each company tracks which rows changed), so saving after every request costs a
few row upserts, not a dump of the whole company. WAL mode keeps readers and the writer out of each other's way.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from qbo_emulator.store import Company

__all__ = ["StateFile"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS companies (realm_id TEXT PRIMARY KEY, meta TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    realm_id TEXT NOT NULL, entity TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (realm_id, entity, id)
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class StateFile:
    """One SQLite database holding the whole emulator state."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def load(self, case_insensitive: bool) -> tuple[dict[str, Company], dict[str, Any]] | None:
        """Companies and the emulator-wide state (OAuth snapshot, clock offset), or ``None`` for an empty file."""
        with self._lock:
            metas = self._db.execute("SELECT realm_id, meta FROM companies").fetchall()
            if not metas:
                return None
            companies: dict[str, Company] = {}
            for realm_id, meta in metas:
                rows: dict[str, list[tuple[dict[str, Any], float]]] = {}
                for entity, body, stamp in self._db.execute(
                    "SELECT entity, body, updated_at FROM rows WHERE realm_id = ?", (realm_id,)
                ):
                    rows.setdefault(entity, []).append((json.loads(body), float(stamp)))
                companies[realm_id] = Company.from_snapshot(json.loads(meta), rows, case_insensitive)
            found = self._db.execute("SELECT value FROM kv WHERE key = 'state'").fetchone()
            return companies, json.loads(found[0]) if found else {}

    def save(self, companies: list[Company], state: dict[str, Any]) -> None:
        """Write each company's meta and changed rows, and the emulator-wide state, in one transaction."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for company in companies:
                    self._save_company(company)
                self._db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES ('state', ?)", (json.dumps(state),))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _save_company(self, company: Company) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO companies (realm_id, meta) VALUES (?, ?)",
            (company.realm_id, json.dumps(company.meta_snapshot())),
        )
        for entity, row_id in sorted(company.dirty):
            row = company.get(entity, row_id)
            if row is None:
                self._db.execute(
                    "DELETE FROM rows WHERE realm_id = ? AND entity = ? AND id = ?",
                    (company.realm_id, entity, row_id),
                )
            else:
                stamp = company.updated_at[entity].get(row_id, company.created_at)
                self._db.execute(
                    "INSERT OR REPLACE INTO rows (realm_id, entity, id, body, updated_at) VALUES (?, ?, ?, ?, ?)",
                    (company.realm_id, entity, row_id, json.dumps(row, ensure_ascii=False), stamp),
                )
        company.dirty.clear()

    def clear(self) -> None:
        with self._lock:
            self._db.executescript("DELETE FROM rows; DELETE FROM companies; DELETE FROM kv;")

    def close(self) -> None:
        with self._lock:
            self._db.close()
