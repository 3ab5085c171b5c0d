"""The one settings tree of qbsync.

Every process reads its configuration exactly once, in its composition root (``Settings()``), and passes the
pieces down. Nothing else in the code base reads the environment.

Environment variables use the prefix ``QBSYNC_`` and ``__`` between levels, e.g.
``QBSYNC_KAFKA__BOOTSTRAP_SERVERS`` or ``QBSYNC_RUNTIME__RETRY_DELAYS_SECONDS='[0.5, 1]'``. The plain
``KAFKA_BOOTSTRAP_SERVERS`` (the name tooling and testcontainers use) is honoured as well when the qbsync-specific
variable is not set. Defaults are the embedded stack: everything on 127.0.0.1, SQLite files under ``var/``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from qbsync.qbo.config import QboClientSettings

__all__ = [
    "SERVICE_NAMES",
    "DatabaseSettings",
    "EmbeddedSettings",
    "HttpSettings",
    "InvoiceSyncSettings",
    "KafkaSettings",
    "LoggingSettings",
    "PullSyncSettings",
    "QboBudgetSettings",
    "RuntimeSettings",
    "ServiceName",
    "Settings",
    "TokenManagerSettings",
    "TopicSettings",
]

ServiceName = Literal["customer-sync", "invoice-sync", "pull-sync", "token-manager"]
SERVICE_NAMES: tuple[ServiceName, ...] = ("customer-sync", "invoice-sync", "pull-sync", "token-manager")

#: Default HTTP port of each process on the embedded stack (health, metrics and, for some, an API).
DEFAULT_HTTP_PORTS: dict[str, int] = {
    "customer-sync": 8101,
    "invoice-sync": 8102,
    "pull-sync": 8103,
    "token-manager": 8104,
    "qbo-emulator": 8765,
}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSettings(_Section):
    """How to reach the Kafka-protocol broker and how our clients behave on it."""

    bootstrap_servers: str = "127.0.0.1:19092"
    client_id_prefix: str = "qbsync"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    #: The embedded broker (tansu) cannot do InitProducerId; real Kafka should run with True.
    enable_idempotence: bool = False
    request_timeout_ms: int = Field(default=30_000, ge=1_000)
    session_timeout_ms: int = Field(default=10_000, ge=1_000)
    heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    #: Upper bound between two polls. Fetching never stops while handlers work, so this is not a handler budget.
    max_poll_interval_ms: int = Field(default=300_000, ge=10_000)
    #: Create missing topics at start-up with explicit partition counts (off where topics are managed by ops).
    create_topics: bool = True
    producer_linger_ms: int = Field(default=2, ge=0)


class TopicSettings(_Section):
    """Partition counts are explicit: keyed topics must never grow partitions later (it breaks key order)."""

    #: Prepended to every topic name, e.g. "staging." — several environments (or test runs) share one cluster.
    prefix: str = Field(default="", max_length=100, pattern=r"^[A-Za-z0-9._-]*$")

    partitions: int = Field(default=6, ge=1, le=1024)
    retry_partitions: int = Field(default=6, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1, le=7)


class DatabaseSettings(_Section):
    """Each service owns its data: a SQLite file per service by default, a schema per service on PostgreSQL."""

    #: SQLAlchemy async URL, e.g. ``postgresql+asyncpg://user:pass@host/qbsync``. Unset: a SQLite file per service.
    url: SecretStr | None = None
    #: Directory of the per-service SQLite files when ``url`` is unset.
    data_dir: Path = Path("var/data")
    #: PostgreSQL schema; unset means one schema per service named after it (``customer_sync``, ...).
    schema_name: str | None = None
    pool_size: int = Field(default=5, ge=1, le=100)
    #: PostgreSQL: a pooled connection idle longer than this is pinged before use (and replaced if the server has
    #: dropped it). One that was used more recently is not: a ping costs three round trips, and under load every
    #: checkout would pay them. 0 pings on every checkout.
    ping_after_idle_seconds: float = Field(default=5.0, ge=0)
    echo: bool = False
    #: Run pending migrations at start-up (the embedded default); production may run ``qbsync db upgrade`` instead.
    migrate_on_start: bool = True


class RuntimeSettings(_Section):
    """The consumer runtime: retry ladder, limits, concurrency and shutdown."""

    #: Delays of the retry tiers; the ladder is attempt 1 now, then one attempt per tier, then the dead letter.
    retry_delays_seconds: tuple[float, ...] = (30.0, 120.0)
    #: A record larger than this is malformed (dead-lettered with the reason).
    max_event_bytes: int = Field(default=1_048_576, ge=1_024)
    #: Records of one partition processed at once (records of one entity always one after the other).
    max_in_flight_per_partition: int = Field(default=16, ge=1, le=1_000)
    #: Fetched-but-unprocessed records per partition before the partition is paused (back-pressure).
    max_buffered_per_partition: int = Field(default=1_000, ge=10)
    commit_interval_ms: int = Field(default=200, ge=10)
    #: A handler running longer than this is cancelled and treated as a transient failure.
    handler_timeout_seconds: float = Field(default=120.0, gt=0)
    #: On shutdown or partition revocation, how long in-flight records may take to finish.
    shutdown_grace_seconds: float = Field(default=20.0, ge=0)
    #: Back-off bounds when recording an outcome fails (database or broker down): retried in place, never skipped.
    outcome_retry_initial_seconds: float = Field(default=0.2, gt=0)
    outcome_retry_max_seconds: float = Field(default=10.0, gt=0)

    @field_validator("retry_delays_seconds")
    @classmethod
    def _positive_delays(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value:
            raise ValueError("at least one retry tier is required")
        if any(d < 0 for d in value):
            raise ValueError("retry delays must be >= 0")
        return value

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays_seconds) + 1


class HttpSettings(_Section):
    """The HTTP listener of a process (/health, /metrics and any API it serves)."""

    host: str = "127.0.0.1"
    #: Unset: the process's default port (see ``DEFAULT_HTTP_PORTS``); 0 picks a free port.
    port: int | None = Field(default=None, ge=0, le=65_535)
    #: Refuse to bind a non-loopback address unless this is set (production containers set it).
    allow_public_bind: bool = False

    @model_validator(mode="after")
    def _loopback_unless_allowed(self) -> Self:
        if not self.allow_public_bind and not _is_loopback(self.host):
            raise ValueError(
                f"http.host={self.host!r} is not a loopback address; set QBSYNC_HTTP__ALLOW_PUBLIC_BIND=true "
                "to bind it on purpose"
            )
        return self

    def port_for(self, process: str, *, offset: int = 0) -> int:
        return DEFAULT_HTTP_PORTS[process] + offset if self.port is None else self.port


class EmbeddedSettings(_Section):
    """The embedded stack started by ``qbsync up`` (broker, emulator, services on 127.0.0.1)."""

    broker_host: str = "127.0.0.1"
    broker_port: int = Field(default=19092, ge=1, le=65_535)
    emulator_port: int = Field(default=DEFAULT_HTTP_PORTS["qbo-emulator"], ge=1, le=65_535)
    #: Added to every default port of the stack (broker, emulator, services) to run a second stack beside the first.
    port_offset: int = Field(default=0, ge=0, le=40_000)
    log_dir: Path = Path("var/log")
    #: Seconds to wait for every process to answer /health.
    start_timeout_seconds: float = Field(default=60.0, gt=0)
    stop_timeout_seconds: float = Field(default=25.0, gt=0)

    @field_validator("broker_host")
    @classmethod
    def _broker_on_loopback(cls, value: str) -> str:
        if not _is_loopback(value):
            raise ValueError("the embedded broker only ever binds a loopback address")
        return value


class TokenManagerSettings(_Section):
    """token-manager (the only component that talks to Intuit OAuth) and how other services reach it.

    The defaults are the development ones (emulator, a dev OAuth app, a dev service credential). With
    ``QBSYNC_ENVIRONMENT=production`` token-manager refuses to start on any of them and without an encryption key.
    """

    #: Where the sync services reach token-manager's API.
    url: str = "http://127.0.0.1:8104"
    #: Credential the sync services present (``Authorization: Bearer``) to get access tokens.
    service_token: SecretStr = SecretStr("qbsync-dev-service-token")
    #: Intuit environment of the OAuth app: its discovery document and API base.
    oauth_environment: Literal["production", "sandbox", "emulator"] = "emulator"
    client_id: str = "qbsync-dev-client"
    client_secret: SecretStr = SecretStr("qbsync-dev-secret")
    #: The redirect URI registered with the OAuth app (token-manager's callback).
    redirect_uri: str = "http://127.0.0.1:8104/oauth/callback"
    scopes: tuple[str, ...] = ("com.intuit.quickbooks.accounting",)
    #: Override of the OpenID discovery document URL (default: Intuit's for production/sandbox, the emulator's).
    discovery_url: str | None = None
    #: Fernet keys (urlsafe base64, 32 bytes): the first encrypts, all decrypt (key rotation).
    encryption_keys: tuple[SecretStr, ...] = ()
    #: A file with one Fernet key per line (first = current), e.g. a mounted secret.
    encryption_key_file: Path | None = None
    #: Lifetime of the signed, single-use OAuth ``state``.
    state_ttl_seconds: int = Field(default=600, ge=30, le=3600)
    #: Refresh proactively when the access token expires within this many seconds.
    refresh_margin_seconds: int = Field(default=300, ge=10)
    refresh_check_interval_seconds: float = Field(default=30.0, gt=0)
    #: Sync services cache a token until this many seconds before it expires.
    client_cache_margin_seconds: int = Field(default=120, ge=0)
    #: Warn (metric + status) when a refresh token expires within this many days.
    refresh_token_warning_days: int = Field(default=30, ge=1)
    #: Upper bound of one call to Intuit's OAuth endpoints (discovery, token, revoke).
    oauth_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    #: A 401 report forces a refresh at most this often per organization, so an Intuit incident that answers 401
    #: to fresh tokens cannot turn into a refresh storm (reports in between get the current token).
    unauthorized_refresh_min_interval_seconds: float = Field(default=5.0, ge=0)
    #: PostgreSQL: the longest a refresh waits for another replica's refresh of the same organization.
    refresh_lock_timeout_seconds: float = Field(default=60.0, gt=0)
    #: How often unpublished connection events (the outbox) are retried, e.g. after a broker outage.
    outbox_flush_interval_seconds: float = Field(default=5.0, gt=0)


class PullSyncSettings(_Section):
    """pull-sync: what comes back from QuickBooks, when, and the webhook receiver.

    Schedule times are local to each organization's time zone: ``"HH:MM"`` daily or ``"sun HH:MM"`` weekly
    (seed: payments 2 AM, customer-update flush 3 AM, items 4 AM, tax Sunday 2 AM).
    """

    payments_at: str = "02:00"
    customer_flush_at: str = "03:00"
    items_at: str = "04:00"
    tax_at: str = "sun 02:00"
    #: A daily change-feed reconcile that catches anything a webhook missed.
    reconcile_at: str = "01:30"
    #: How often the scheduler looks for due slots.
    scheduler_interval_seconds: float = Field(default=30.0, gt=0)
    #: A slot missed while no replica ran (deploy, outage) still runs if the scheduler is back within this time.
    schedule_catch_up_hours: float = Field(default=6.0, ge=0, le=24 * 7)
    #: Each change-feed read starts this far before the last one's server time (clock skew, late commits); what it
    #: reads again is compared with what was published, so nothing is published twice.
    change_feed_overlap_seconds: int = Field(default=300, ge=0, le=3600)
    #: Items: only active ones by default (seed §2); Inventory and Service types only, always.
    include_inactive_items: bool = False
    #: The change feed reaches 30 days back; an older watermark means a full reload.
    full_reload_after_days: int = Field(default=30, ge=1, le=30)
    #: Intuit's webhook verifier token (HMAC-SHA256 key of ``intuit-signature``). Development default.
    webhook_verifier_token: SecretStr = SecretStr("qbsync-dev-verifier")
    webhook_path: str = "/webhooks/quickbooks"
    #: Webhooks switched off: only the scheduled change-feed runs pick changes up.
    webhooks_enabled: bool = True
    #: A larger notification is refused (413) before its signature is even computed.
    webhook_max_body_bytes: int = Field(default=262_144, ge=1_024, le=1_048_576)
    #: Intuit wants a 200 within 3 s: queueing a notification on Kafka may take this long, else 503 (Intuit retries).
    webhook_ack_timeout_seconds: float = Field(default=2.5, gt=0, le=10)


class InvoiceSyncSettings(_Section):
    """invoice-sync: live micro-batching into ``/batch``, reference caches, bulk runs, refunds."""

    #: Collect concurrent InvoiceCreated writes of one company into one ``/batch`` request.
    batching_enabled: bool = True
    #: How long the first invoice of a batch waits for others to join (the batch also leaves when it is full).
    batch_window_ms: float = Field(default=15.0, ge=0, le=1_000)
    #: Items per micro-batch; QuickBooks takes at most 30.
    batch_max_items: int = Field(default=30, ge=1, le=30)
    #: Batches of one company on their way at once; while they wait, the next batch fills up. The records waiting in
    #: batches count against the runtime's ``max_in_flight_per_partition``, so full batches need that to be at least
    #: ``batch_max_items x (batch_concurrency + 1)``; below it, batches are smaller (never wrong, only more requests).
    batch_concurrency: int = Field(default=1, ge=1, le=10)
    #: Share of the company's batch budget that partial batches may spend as fast as they are ready (a burst: the
    #: first ~11 of 111 a minute). Beyond it a partial batch waits until it is full or the sustained pace allows
    #: (one batch per window / batch requests per window since the last one), so a long bulk spends its budget on
    #: full batches instead of running out of it early on half-full ones. 1.0: never wait.
    batch_burst_share: float = Field(default=0.1, ge=0, le=1)
    #: How long the company's Preferences, terms, payment methods and bank account are cached per organization.
    reference_ttl_seconds: float = Field(default=300.0, ge=0)
    #: A SKU that QuickBooks did not know is not asked for again within this time (a burst of lines, one query).
    missing_sku_ttl_seconds: float = Field(default=30.0, ge=0)
    #: "Sync All Unsent Invoices": invoices handled per run (it must fit the handler timeout); the rest wait for the
    #: next run, which the summary asks for.
    bulk_max_per_run: int = Field(default=1_500, ge=1)
    #: Name of the QuickBooks item refunds are booked on; unset: the largest line's item of the refunded document.
    refund_item_name: str | None = None
    #: Name of the bank account refunds are paid from; unset: the first active Bank account.
    refund_account_name: str | None = None


class QboBudgetSettings(_Section):
    """How the services share one QuickBooks company's budget, so that together they never cause a 429.

    QBO allows a company (per app) 500 requests/min, 10 requests in flight and 120 batch requests/min, whoever sends
    them. Each service runs its own limiter with a share of ``qbo.requests_per_window`` / ``batch_requests_per_window``
    and an absolute number of in-flight requests; the shares add up to at most 1 and the in-flight numbers to at most
    10, so their sum stays under QBO's limits by construction. invoice-sync writes the bulk (and batches it), so it
    gets most; a share is a ceiling, not a reservation.
    """

    request_shares: dict[str, float] = Field(
        default_factory=lambda: {"invoice-sync": 0.5, "customer-sync": 0.2, "pull-sync": 0.25, "token-manager": 0.05}
    )
    batch_shares: dict[str, float] = Field(
        # only invoice-sync sends batches (creates, bulk); the others keep one batch a minute for a future need
        default_factory=lambda: {"invoice-sync": 0.97, "customer-sync": 0.01, "pull-sync": 0.01, "token-manager": 0.01}
    )
    in_flight: dict[str, int] = Field(
        default_factory=lambda: {"invoice-sync": 4, "customer-sync": 2, "pull-sync": 2, "token-manager": 1}
    )

    @model_validator(mode="after")
    def _fits_qbo(self) -> Self:
        for name, shares in (("request_shares", self.request_shares), ("batch_shares", self.batch_shares)):
            if any(v < 0 for v in shares.values()) or sum(shares.values()) > 1.0 + 1e-9:
                raise ValueError(f"qbo_budget.{name} must be non-negative and add up to at most 1")
        if any(v < 1 for v in self.in_flight.values()) or sum(self.in_flight.values()) > 10:
            raise ValueError("qbo_budget.in_flight must be >= 1 each and add up to at most 10 (QBO's limit)")
        return self

    def for_service(self, qbo: QboClientSettings, service: str) -> QboClientSettings:
        """The QBO client settings of ``service``: its share of the company budget."""
        request_share = self.request_shares.get(service)
        if request_share is None:
            return qbo
        batch_share = self.batch_shares.get(service, 0.0)
        return qbo.model_copy(
            update={
                "requests_per_window": max(1, int(qbo.requests_per_window * request_share)),
                "batch_requests_per_window": max(1, int(qbo.batch_requests_per_window * batch_share)),
                "max_in_flight": min(qbo.max_in_flight, self.in_flight.get(service, 1)),
            }
        )


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class Settings(BaseSettings):
    """Root of the settings tree. Construct once per process (``Settings()``) and pass down."""

    model_config = SettingsConfigDict(
        env_prefix="QBSYNC_",
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
    )

    environment: Literal["development", "test", "production"] = "development"
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    database: DatabaseSettings = DatabaseSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    http: HttpSettings = HttpSettings()
    embedded: EmbeddedSettings = EmbeddedSettings()
    logging: LoggingSettings = LoggingSettings()
    qbo: QboClientSettings = QboClientSettings()
    token_manager: TokenManagerSettings = TokenManagerSettings()
    pull_sync: PullSyncSettings = PullSyncSettings()
    qbo_budget: QboBudgetSettings = QboBudgetSettings()
    invoice_sync: InvoiceSyncSettings = InvoiceSyncSettings()

    #: ``KAFKA_BOOTSTRAP_SERVERS`` without the prefix; applied when ``QBSYNC_KAFKA__BOOTSTRAP_SERVERS`` is unset.
    kafka_bootstrap_servers_fallback: Annotated[
        str | None,
        Field(default=None, validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS"), exclude=True, repr=False),
    ]

    @model_validator(mode="after")
    def _apply_plain_kafka_variable(self) -> Self:
        fallback = self.kafka_bootstrap_servers_fallback
        if fallback and "bootstrap_servers" not in self.kafka.model_fields_set:
            object.__setattr__(self, "kafka", self.kafka.model_copy(update={"bootstrap_servers": fallback}))
        return self
