"""Persistence: the per-service database, runtime tables and migrations."""

from qbsync.persistence.database import Database, database_url_for, schema_for
from qbsync.persistence.migrate import RUNTIME_BRANCH, upgrade

__all__ = ["RUNTIME_BRANCH", "Database", "database_url_for", "schema_for", "upgrade"]
