"""Schema migrations (Alembic), run programmatically at service start-up or by ``qbsync db upgrade``.

Migrations are organised in branches, one per owner: ``runtime`` (the tables every service has) and one per service
for the tables only it owns. A service upgrades ``runtime`` plus its own branch in its own database / schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from qbsync.persistence.database import Database

__all__ = ["RUNTIME_BRANCH", "alembic_config", "upgrade"]

RUNTIME_BRANCH = "runtime"


def alembic_config() -> Config:
    root = Path(str(resources.files("qbsync.persistence") / "migrations"))
    versions = sorted(str(p) for p in (root / "versions").iterdir() if p.is_dir() and not p.name.startswith("_"))
    cfg = Config()
    cfg.set_main_option("script_location", str(root))
    cfg.set_main_option("version_locations", " ".join(versions))
    cfg.set_main_option("path_separator", "space")
    return cfg


async def upgrade(db: Database, branches: Sequence[str] = (RUNTIME_BRANCH,)) -> None:
    """Bring ``db`` to the head of each branch (idempotent; safe to call on every start)."""

    def run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        for branch in branches:
            command.upgrade(cfg, f"{branch}@head")

    async with db.transaction() as conn:
        await conn.run_sync(run)
