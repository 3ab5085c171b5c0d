"""Schema migrations (Alembic), run programmatically at service start-up or by ``qbsync db upgrade``.

Migrations are organised in branches, one per owner: ``runtime`` (the tables every service has, here) and one per
service for the tables only it owns (in the service's package). A service upgrades ``runtime`` plus its own branch in
its own database / schema, at start-up or with ``<service> migrate``.
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


def alembic_config(extra_version_locations: Sequence[Path] = ()) -> Config:
    """Alembic configuration: the runtime branch from this package plus any service's own version directories."""
    root = Path(str(resources.files("qbsync.persistence") / "migrations"))
    versions = sorted(str(p) for p in (root / "versions").iterdir() if p.is_dir() and not p.name.startswith("_"))
    versions.extend(str(p) for p in extra_version_locations)
    cfg = Config()
    cfg.set_main_option("script_location", str(root))
    cfg.set_main_option("version_locations", " ".join(versions))
    cfg.set_main_option("path_separator", "space")
    return cfg


async def upgrade(
    db: Database, branches: Sequence[str] = (RUNTIME_BRANCH,), *, version_locations: Sequence[Path] = ()
) -> None:
    """Bring ``db`` to the head of each branch (idempotent; safe to call on every start).

    A service that owns tables keeps its migrations in its own package (``version_locations``) as a branch that
    depends on ``runtime``.
    """

    def run(connection: Connection) -> None:
        cfg = alembic_config(version_locations)
        cfg.attributes["connection"] = connection
        for branch in branches:
            command.upgrade(cfg, f"{branch}@head")

    async with db.transaction() as conn:
        await conn.run_sync(run)
