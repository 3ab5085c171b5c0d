"""Start-up: production refuses development defaults (naming each), and the ``token_manager`` migration branch
creates exactly the tables the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import MetaData

from qbsync.persistence import RUNTIME_BRANCH, Database, upgrade
from qbsync.persistence.tables import metadata as runtime_metadata
from qbsync.qbo import QboClientSettings
from qbsync.settings import DatabaseSettings, Settings, TokenManagerSettings
from token_manager.app import BRANCH, MIGRATIONS, definition
from token_manager.config import ConfigurationError, check_configuration, production_problems
from token_manager.store import metadata as token_manager_metadata


def test_production_names_every_development_default_it_refuses() -> None:
    problems = production_problems(Settings(environment="production"))
    text = " ".join(problems)
    assert len(problems) == 5
    for needle in ("SERVICE_TOKEN", "CLIENT_ID", "OAUTH_ENVIRONMENT", "encryption key", "REDIRECT_URI"):
        assert needle in text
    with pytest.raises(ConfigurationError, match="refuses to start in production"):
        check_configuration(Settings(environment="production"))


def test_a_complete_production_configuration_starts() -> None:
    ready = Settings(
        environment="production",
        token_manager=TokenManagerSettings(
            service_token=SecretStr("s" * 48),
            oauth_environment="production",
            client_id="ABcdEF123",
            client_secret=SecretStr("real-secret"),
            redirect_uri="https://sync.example.com/oauth/callback",
            encryption_keys=(SecretStr(Fernet.generate_key().decode()),),
        ),
        qbo=QboClientSettings(environment="production"),
    )
    assert production_problems(ready) == []
    check_configuration(ready)
    check_configuration(Settings(environment="development"))  # development runs on the defaults
    mismatched = ready.model_copy(update={"qbo": ready.qbo.model_copy(update={"environment": "sandbox"})})
    assert [p for p in production_problems(mismatched) if "QBSYNC_QBO__ENVIRONMENT" in p]


def test_the_service_definition_runs_its_own_migration_branch() -> None:
    assert definition.migration_branches == (RUNTIME_BRANCH, BRANCH)
    assert definition.migration_locations == (MIGRATIONS,)
    assert definition.track_connections is False
    assert (MIGRATIONS / "tm0001_token_manager.py").is_file()


async def test_migrations_create_exactly_the_declared_tables(database_settings: DatabaseSettings) -> None:
    db = await Database.open("token-manager", database_settings)
    try:
        await upgrade(db, (RUNTIME_BRANCH, BRANCH), version_locations=(MIGRATIONS,))
        await upgrade(db, (RUNTIME_BRANCH, BRANCH), version_locations=(MIGRATIONS,))  # idempotent
        declared = MetaData()
        for source in (runtime_metadata, token_manager_metadata):
            for table in source.tables.values():
                table.to_metadata(declared)

        def diff(connection: Any) -> list[Any]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, declared))

        async with db.connect() as conn:
            differences = await conn.run_sync(diff)
        differences = [d for d in differences if not (d[0] == "remove_table" and d[1].name == "alembic_version")]
        assert differences == [], differences
    finally:
        await db.close()
