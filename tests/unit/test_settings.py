"""The settings tree: environment parsing, precedence, loopback safety, secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from qbsync.settings import HttpSettings, RuntimeSettings, Settings


def test_defaults_are_the_embedded_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    settings = Settings()
    assert settings.kafka.bootstrap_servers == "127.0.0.1:19092"
    assert settings.database.url is None
    assert settings.http.host == "127.0.0.1"
    assert settings.runtime.retry_delays_seconds == (30.0, 120.0)
    assert settings.runtime.max_attempts == 3
    assert settings.kafka.enable_idempotence is False


def test_nested_environment_variables_use_the_qbsync_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QBSYNC_RUNTIME__RETRY_DELAYS_SECONDS", "[0.5, 1, 2]")
    monkeypatch.setenv("QBSYNC_TOPICS__PREFIX", "staging.")
    monkeypatch.setenv("QBSYNC_DATABASE__URL", "postgresql+asyncpg://qbsync:s3cret-pass@db/qbsync")
    settings = Settings()
    assert settings.runtime.retry_delays_seconds == (0.5, 1.0, 2.0)
    assert settings.runtime.max_attempts == 4
    assert settings.topics.prefix == "staging."
    assert settings.database.url is not None
    assert "s3cret-pass" not in repr(settings)
    assert "s3cret-pass" not in str(settings.model_dump())


def test_plain_kafka_bootstrap_variable_applies_unless_the_qbsync_one_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-a:9092")
    assert Settings().kafka.bootstrap_servers == "kafka-a:9092"
    monkeypatch.setenv("QBSYNC_KAFKA__BOOTSTRAP_SERVERS", "kafka-b:9092")
    assert Settings().kafka.bootstrap_servers == "kafka-b:9092"


def test_http_refuses_a_public_address_unless_asked() -> None:
    with pytest.raises(ValidationError, match="not a loopback"):
        HttpSettings(host="0.0.0.0")
    assert HttpSettings(host="0.0.0.0", allow_public_bind=True).host == "0.0.0.0"
    assert HttpSettings(host="::1").host == "::1"


def test_retry_tiers_must_exist_and_be_non_negative() -> None:
    with pytest.raises(ValidationError):
        RuntimeSettings(retry_delays_seconds=())
    with pytest.raises(ValidationError):
        RuntimeSettings(retry_delays_seconds=(-1.0,))


def test_topic_prefix_only_allows_safe_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QBSYNC_TOPICS__PREFIX", "bad prefix/")
    with pytest.raises(ValidationError):
        Settings()


def test_the_services_qbo_budgets_add_up_to_less_than_qbos_limits() -> None:
    from qbsync.settings import SERVICE_NAMES

    settings = Settings()
    shares = [settings.qbo_budget.for_service(settings.qbo, name) for name in SERVICE_NAMES]
    assert sum(s.requests_per_window for s in shares) <= settings.qbo.requests_per_window < 500
    assert sum(s.batch_requests_per_window for s in shares) <= settings.qbo.batch_requests_per_window <= 120
    assert sum(s.max_in_flight for s in shares) <= 10
    assert all(s.window_s == settings.qbo.window_s for s in shares)
    invoice = settings.qbo_budget.for_service(settings.qbo, "invoice-sync")
    assert invoice.batch_requests_per_window == max(s.batch_requests_per_window for s in shares), "bulk goes first"


def test_a_budget_that_exceeds_qbos_limits_is_refused() -> None:
    from qbsync.settings import QboBudgetSettings

    with pytest.raises(ValidationError, match="at most 1"):
        QboBudgetSettings(request_shares={"invoice-sync": 0.8, "customer-sync": 0.3})
    with pytest.raises(ValidationError, match="at most 10"):
        QboBudgetSettings(in_flight={"invoice-sync": 8, "customer-sync": 3})
