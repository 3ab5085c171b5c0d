"""Emulator configuration: every fidelity decision the facts leave open is a field here, with its default.

The defaults reproduce QBO as documented in ``docs/qbo-api-facts.md``; where the facts are marked UNCERTAIN the
field says which reading was chosen (and ``docs/emulator.md`` lists them all). The objects are plain pydantic
models so the CLI, tests and the admin API can build or amend them without a settings framework.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DEV_CLIENT_ID",
    "DEV_CLIENT_SECRET",
    "DEV_VERIFIER_TOKEN",
    "AppRegistration",
    "EmulatorConfig",
    "FidelityConfig",
    "LatencyConfig",
    "LimitsConfig",
    "OAuthConfig",
    "WebhookConfig",
]

DEV_CLIENT_ID = "qbsync-dev-client"
DEV_CLIENT_SECRET = "qbsync-dev-secret"  # noqa: S105 - a published development credential
DEV_VERIFIER_TOKEN = "qbsync-dev-verifier"  # noqa: S105 - a published development credential

_MODEL = ConfigDict(extra="forbid", validate_assignment=True)


class AppRegistration(BaseModel):
    """One registered Intuit app (what the developer portal's Keys tab holds)."""

    model_config = _MODEL

    client_id: str
    client_secret: str = Field(repr=False)
    verifier_token: str = Field(repr=False)
    name: str = "qbsync dev app"
    redirect_uris: list[str] = Field(default_factory=list)
    allow_loopback_redirects: bool = True
    """Accept any ``http://127.0.0.1:<port>/…`` or ``http://localhost:<port>/…`` redirect (local development)."""


def _dev_app() -> AppRegistration:
    return AppRegistration(client_id=DEV_CLIENT_ID, client_secret=DEV_CLIENT_SECRET, verifier_token=DEV_VERIFIER_TOKEN)


class OAuthConfig(BaseModel):
    """Token lifetimes and rotation (facts §1)."""

    model_config = _MODEL

    access_token_ttl_s: int = 3600
    refresh_token_ttl_s: int = 8_726_400
    """``x_refresh_token_expires_in``: 101 days as observed in 2020 (100 days is also seen); rolling."""
    rotation_period_s: int = 86_400
    """The refresh-token value changes once the current one is older than this (Intuit: "about 24 h")."""
    superseded_grace_s: int = 0
    """UNCERTAIN. Intuit's newer help article says a superseded refresh token is invalid at once; the older FAQ
    says it lives 24 h more. Default 0 (the strict, newer reading); set 86400 for the older one."""
    hard_cap_s: int = 5 * 365 * 86_400
    """The 5-year cap on a grant's refresh tokens, counted from the first issue (announced Nov 2025)."""
    auth_code_ttl_s: int = 600


class LimitsConfig(BaseModel):
    """Per company + per OAuth app throttling (facts §3)."""

    model_config = _MODEL

    enabled: bool = True
    requests_per_window: int = 500
    window_s: float = 60.0
    concurrent_requests: int = 10
    batch_requests_per_window: int = 120
    """120/min is the limit announced for Oct 2025; the older documented figure was 40."""
    throttle_body: Literal["xml", "json"] = "xml"
    """The 429 body: the only body seen in the sources is XML (PHP-SDK#54), so XML is the default."""
    retry_after_s: int | None = None
    """UNCERTAIN whether QBO sends ``Retry-After`` on 429; off by default, an integer turns it on."""


class LatencyConfig(BaseModel):
    """Default response latency: lognormal with the given median and 99th percentile (0 = none)."""

    model_config = _MODEL

    median_ms: float = 0.0
    p99_ms: float | None = None
    max_ms: float = 60_000.0
    seed: int = 0


class WebhookConfig(BaseModel):
    """Change-notification delivery (facts §2 Webhooks)."""

    model_config = _MODEL

    aggregation_window_s: float = 0.2
    ack_timeout_s: float = 3.0
    retry_schedule_s: list[float] = Field(
        default_factory=lambda: [10.0, 20.0, 30.0, 300.0, 1200.0, 7200.0, 14400.0, 21600.0]
    )
    retry_every_s: float = 21600.0
    """After the schedule is used up Intuit keeps retrying every 6 h."""
    max_attempts: int = 12
    """Attempts per delivery before it is marked failed (bounded so nothing retries forever)."""
    compression: float = 1.0
    """Multiplies every retry delay; 0.001 turns 10 s into 10 ms for tests."""


class FidelityConfig(BaseModel):
    """Behaviours where QBO is undocumented or the sources disagree."""

    model_config = _MODEL

    minor_version: int = 75
    qbo_version: str = "85.317"
    docnumber_max_length: int = 21
    """UNCERTAIN: the widely quoted limit; no primary source states it."""
    requestid_max_length: int = 50
    requestid_batch_max_length: int = 36
    requestid_retention_s: float | None = None
    """UNKNOWN in QBO. ``None`` keeps every request id for the process lifetime."""
    requestid_replay_errors: bool = True
    """Facts: a replay returns "the same response as the original", so 4xx answers are replayed too.
    Infrastructure answers (throttling, injected 5xx, 401) never reached the service and are not stored."""
    tax_rounding: Literal["per_line_half_up", "total_half_up"] = "per_line_half_up"
    """UNCERTAIN rule. Per line, half-up to cents, then summed: a client rounding the subtotal once can be a
    cent off (e.g. two 0.25 lines at 10 %: 0.03 + 0.03 = 0.06 against 0.05)."""
    payment_foreign_link: Literal["error", "unapplied"] = "error"
    """A payment line linking another customer's invoice: 620 "Txn ID Cannot Be Linked" (one source) or
    silently unapplied (another)."""
    cdc_lookback_days: int = 30
    cdc_max_objects: int = 1000
    batch_max_items: int = 30
    metadata_milliseconds: bool = False
    """QBO's MetaData times have whole seconds; turn on for millisecond stamps (dense CDC tests)."""
    name_case_insensitive: bool = True
    """DisplayName uniqueness ignores case and surrounding spaces (QBO's UI behaves so)."""


class EmulatorConfig(BaseModel):
    """Everything ``create_app`` needs; ``EmulatorConfig()`` is the documented default emulator."""

    model_config = _MODEL

    apps: list[AppRegistration] = Field(default_factory=lambda: [_dev_app()])
    oauth: OAuthConfig = Field(default_factory=OAuthConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    latency: LatencyConfig = Field(default_factory=LatencyConfig)
    webhooks: WebhookConfig = Field(default_factory=WebhookConfig)
    fidelity: FidelityConfig = Field(default_factory=FidelityConfig)
    state_file: Path | None = None
    seed_demo: int = 0
    """Number of demo companies seeded at start (0 = none)."""
    public_base_url: str | None = None
    """Origin used in the discovery document; ``None`` derives it from each request's Host."""
    default_timezone: str = "America/Los_Angeles"
    fault_seed: int = 0
    timeout_hold_max_s: float = 120.0
    """Upper bound on how long an injected timeout holds a request."""
