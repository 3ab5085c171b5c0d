"""Settings of the QBO client: a plain model (no environment reading; the settings tree wires it).

Defaults sit a safe margin under QBO's published limits (500 requests/min and 10 in flight per realm and app,
120 batch requests/min) because other processes of the same app may share the company's budget.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["BASE_URLS", "QboClientSettings"]

BASE_URLS: dict[str, str] = {
    "production": "https://quickbooks.api.intuit.com",
    "sandbox": "https://sandbox-quickbooks.api.intuit.com",
    "emulator": "http://127.0.0.1:8765",
}


class QboClientSettings(BaseModel):
    """How the client reaches QBO, how long it waits, how often it retries, and how fast it may go."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    environment: Literal["production", "sandbox", "emulator"] = "emulator"
    base_url: str | None = Field(default=None, description="Overrides the environment's base URL.")
    minorversion: int = Field(default=75, ge=75, description="Sent on every request; QBO serves <75 as 75.")
    user_agent: str = "qbsync-qbo-client/0.1"

    # Timeouts (seconds). QBO has been seen taking 15-30 s, so reads get a generous bound.
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=60.0, gt=0)
    write_timeout_s: float = Field(default=30.0, gt=0)
    pool_timeout_s: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=100, ge=1)

    # In-place retries. Reads retry transport errors, 429 and 5xx; writes retry transport errors only.
    read_max_attempts: int = Field(default=4, ge=1, le=10)
    write_max_attempts: int = Field(default=3, ge=1, le=10)
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_multiplier: float = Field(default=2.0, ge=1)
    backoff_max_s: float = Field(default=20.0, gt=0)
    retry_after_max_s: float = Field(default=60.0, gt=0, description="Cap on a server's Retry-After hint.")

    # Per-company budget (the in-process limiter). The window is configurable only so tests can scale it down.
    requests_per_window: int = Field(default=450, ge=1, description="QBO: 500/min per realm and app.")
    batch_requests_per_window: int = Field(
        default=115, ge=1, description="QBO: 120/min (40 before late 2025); a little spare."
    )
    window_s: float = Field(default=60.0, gt=0)
    max_in_flight: int = Field(default=8, ge=1, le=10, description="QBO: 10 concurrent per realm and app.")
    limiter_max_wait_s: float = Field(default=120.0, gt=0, description="Longest wait for a slot, then 429-like.")
    throttle_pause_s: float = Field(default=5.0, ge=0, description="Company pause after a 429 with no hint.")

    # Helpers' bounds.
    query_page_size: int = Field(default=1000, ge=1, le=1000)
    query_max_pages: int = Field(default=1000, ge=1)
    batch_chunk_size: int = Field(default=30, ge=1, le=30)
    cdc_object_cap: int = Field(default=1000, ge=1, description="QBO returns at most this many per entity.")
    cdc_max_windows: int = Field(default=50, ge=1)
    query_post_threshold: int = Field(default=1500, ge=1, description="Longer queries are POSTed, not GET.")

    @model_validator(mode="after")
    def _check(self) -> QboClientSettings:
        if self.batch_requests_per_window > self.requests_per_window:
            raise ValueError("batch_requests_per_window cannot exceed requests_per_window (batches count in both)")
        if self.backoff_initial_s > self.backoff_max_s:
            raise ValueError("backoff_initial_s must not exceed backoff_max_s")
        return self

    @property
    def resolved_base_url(self) -> str:
        """The base URL requests go to (no trailing slash)."""
        return (self.base_url or BASE_URLS[self.environment]).rstrip("/")
