"""Change notifications: subscriptions, aggregation, signed delivery and Intuit's retry schedule.

Each subscription (set through the admin API) has its own worker task. Events are aggregated for
``aggregation_window_s``, packed into one notification in the subscription's format (legacy
``eventNotifications`` or a CloudEvents array), signed with ``intuit-signature`` = base64(HMAC-SHA256(app
verifier token, raw body)) and POSTed. A delivery counts as acknowledged on a 2xx within ``ack_timeout_s`` (3 s);
otherwise it is retried after 10 s, 20 s, 30 s, 5 min, 20 min, 2 h, 4 h, 6 h, then every 6 h (each times the
compression factor), measured on the emulator clock so moving the clock makes retries due. While a delivery is
unacknowledged, later events are held and go out, in order, after it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from itertools import count
from typing import Any, Final, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from qbo_emulator.clock import Clock, format_webhook_time
from qbo_emulator.config import DEV_CLIENT_ID, AppRegistration, WebhookConfig
from qbo_emulator.context import ChangeEvent
from qbo_emulator.entities import BY_NAME

__all__ = ["Delivery", "Subscription", "WebhookService", "sign"]

log = logging.getLogger(__name__)

_PAST: Final = {
    "Create": "created",
    "Update": "updated",
    "Delete": "deleted",
    "Void": "voided",
    "Merge": "merged",
    "Emailed": "emailed",
}


def sign(verifier_token: str, body: bytes) -> str:
    """The ``intuit-signature`` header value for ``body``."""
    digest = hmac.new(verifier_token.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class Subscription(BaseModel):
    """A webhook endpoint (admin API body for ``POST /_admin/webhooks``)."""

    model_config = ConfigDict(extra="forbid")

    url: str
    format: Literal["legacy", "cloudevents"] = "legacy"
    entities: list[str] | None = None
    """Entity names (``Customer``, ``Invoice``…); ``None`` = every entity that has webhooks."""
    operations: list[str] | None = None
    client_id: str = DEV_CLIENT_ID
    realm_ids: list[str] | None = None
    id: str = Field(default="")

    def wants(self, event: ChangeEvent) -> bool:
        spec = BY_NAME.get(event.entity)
        return (
            spec is not None
            and spec.webhook
            and (self.entities is None or event.entity in self.entities)
            and (self.operations is None or event.operation in self.operations)
            and (self.realm_ids is None or event.realm_id in self.realm_ids)
        )


@dataclass
class Attempt:
    at: str
    status: int | None
    error: str | None
    duration_ms: float


@dataclass
class Delivery:
    """One notification and its delivery history."""

    id: str
    subscription_id: str
    body: bytes
    events: int
    created_at: str
    status: Literal["pending", "delivered", "failed"] = "pending"
    attempts: list[Attempt] = field(default_factory=list)
    next_attempt_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subscription_id": self.subscription_id,
            "status": self.status,
            "events": self.events,
            "created_at": self.created_at,
            "next_attempt_at": self.next_attempt_at,
            "attempts": [a.__dict__ for a in self.attempts],
            "body": self.body.decode("utf-8"),
        }


@dataclass
class _Lane:
    """Per-subscription state: events not yet packed, deliveries not yet settled, the worker."""

    pending: list[ChangeEvent] = field(default_factory=list)
    first_pending_at: float = 0.0
    queue: deque[Delivery] = field(default_factory=deque)
    wake: asyncio.Event | None = None
    task: asyncio.Task[None] | None = None


class WebhookService:
    """Subscriptions, their delivery lanes and the delivery log."""

    def __init__(
        self,
        config: WebhookConfig,
        clock: Clock,
        apps: Mapping[str, AppRegistration],
        zone_for: Callable[[str], tzinfo],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._apps = apps
        self._zone_for = zone_for
        self._transport = transport
        self._ids = count(1)
        self.subscriptions: dict[str, Subscription] = {}
        self.deliveries: list[Delivery] = []
        self._lanes: dict[str, _Lane] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._closed = False
        clock.on_change(self._wake_all_threadsafe)

    # ------------------------------------------------------------------ configuration
    def subscribe(self, subscription: Subscription) -> Subscription:
        subscription.id = f"sub-{next(self._ids)}"
        self.subscriptions[subscription.id] = subscription
        self._lanes[subscription.id] = _Lane()
        self._ensure_worker(subscription.id)
        return subscription

    def unsubscribe(self, subscription_id: str) -> bool:
        lane = self._lanes.pop(subscription_id, None)
        if lane is not None and lane.task is not None:
            lane.task.cancel()
        return self.subscriptions.pop(subscription_id, None) is not None

    # ------------------------------------------------------------------ events
    def publish(self, events: list[ChangeEvent]) -> None:
        """Queue events for every subscription that wants them (called after each successful write)."""
        for sub_id, subscription in self.subscriptions.items():
            wanted = [e for e in events if subscription.wants(e)]
            if not wanted:
                continue
            lane = self._lanes[sub_id]
            if not lane.pending:
                lane.first_pending_at = time.monotonic()
            lane.pending.extend(wanted)
            self._ensure_worker(sub_id)
            if lane.wake is not None:
                lane.wake.set()

    # ------------------------------------------------------------------ lifecycle
    def _ensure_worker(self, sub_id: str) -> None:
        if self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet (start-up seeding); ``start`` picks the lanes up
        lane = self._lanes[sub_id]
        if lane.task is None or lane.task.done() or self._loop is not loop:
            if self._loop is not loop:
                self._client = None  # an httpx client belongs to the loop that created it
            self._loop = loop
            lane.wake = asyncio.Event()
            lane.task = loop.create_task(self._run(sub_id), name=f"webhook-{sub_id}")

    async def start(self) -> None:
        self._closed = False
        for sub_id in self._lanes:
            self._ensure_worker(sub_id)

    async def aclose(self) -> None:
        # The flag, not only the cancellation, stops the workers: Python 3.11's ``wait_for`` can swallow a
        # cancel that races with the awaited event.
        self._closed = True
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await task
        for lane in self._lanes.values():
            lane.task = None
        if self._client is not None:
            with contextlib.suppress(RuntimeError):
                await self._client.aclose()
            self._client = None

    def _wake_all_threadsafe(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for lane in list(self._lanes.values()):
            if lane.wake is not None:
                loop.call_soon_threadsafe(lane.wake.set)

    # ------------------------------------------------------------------ the worker
    async def _run(self, sub_id: str) -> None:
        while not self._closed and sub_id in self.subscriptions:
            lane = self._lanes[sub_id]
            if not lane.queue:
                if not lane.pending:
                    await self._sleep(lane, 1.0)
                    continue
                left = lane.first_pending_at + self.config.aggregation_window_s - time.monotonic()
                if left > 0:
                    await asyncio.sleep(left)
                    continue
                lane.queue.append(self._pack(self.subscriptions[sub_id], lane.pending))
                lane.pending = []
            head = lane.queue[0]
            due = head.next_attempt_at - self._clock.timestamp()
            if due > 0:
                await self._sleep(lane, min(due, 0.5))
                continue
            await self._attempt(self.subscriptions[sub_id], head)
            if head.status != "pending":
                lane.queue.popleft()

    @staticmethod
    async def _sleep(lane: _Lane, seconds: float) -> None:
        if lane.wake is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(lane.wake.wait(), timeout=seconds)
        lane.wake.clear()

    def _pack(self, subscription: Subscription, events: list[ChangeEvent]) -> Delivery:
        if subscription.format == "legacy":
            payload: Any = self._legacy(events)
        else:
            payload = self._cloudevents(subscription, events)
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        delivery = Delivery(
            id=f"dlv-{next(self._ids)}",
            subscription_id=subscription.id,
            body=body,
            events=len(events),
            created_at=self._clock.now().isoformat(),
            next_attempt_at=self._clock.timestamp(),
        )
        self.deliveries.append(delivery)
        return delivery

    def _legacy(self, events: list[ChangeEvent]) -> dict[str, Any]:
        by_realm: dict[str, list[dict[str, str]]] = {}
        for event in events:
            by_realm.setdefault(event.realm_id, []).append(
                {
                    "name": event.entity,
                    "id": event.entity_id,
                    "operation": event.operation,
                    "lastUpdated": format_webhook_time(event.at, self._zone_for(event.realm_id)),
                }
            )
        return {
            "eventNotifications": [
                {"realmId": realm, "dataChangeEvent": {"entities": entities}} for realm, entities in by_realm.items()
            ]
        }

    def _cloudevents(self, subscription: Subscription, events: list[ChangeEvent]) -> list[dict[str, Any]]:
        source = base64.b64encode(hashlib.sha256(subscription.client_id.encode()).digest()).decode()
        return [
            {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "source": f"intuit.{source}",
                "type": f"qbo.{event.entity.lower()}.{_PAST[event.operation]}.v1",
                "datacontenttype": "application/json",
                "time": event.at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "intuitentityid": event.entity_id,
                "intuitaccountid": event.realm_id,
                "data": {},
            }
            for event in events
        ]

    async def _attempt(self, subscription: Subscription, delivery: Delivery) -> None:
        app = self._apps.get(subscription.client_id)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if app is not None:
            headers["intuit-signature"] = sign(app.verifier_token, delivery.body)
        if self._client is None:
            self._client = httpx.AsyncClient(transport=self._transport, timeout=self.config.ack_timeout_s)
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(subscription.url, content=delivery.body, headers=headers)
            status = response.status_code
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        elapsed = time.monotonic() - started
        acknowledged = status is not None and 200 <= status < 300 and elapsed <= self.config.ack_timeout_s
        if status is not None and 200 <= status < 300 and not acknowledged:
            error = f"acknowledged after {elapsed:.2f} s (limit {self.config.ack_timeout_s} s)"
        delivery.attempts.append(Attempt(self._clock.now().isoformat(), status, error, round(elapsed * 1000, 1)))
        if acknowledged:
            delivery.status = "delivered"
            return
        failures = len(delivery.attempts)
        if failures >= self.config.max_attempts:
            delivery.status = "failed"
            log.info("webhook delivery %s failed after %d attempts", delivery.id, failures)
            return
        schedule = self.config.retry_schedule_s
        delay = schedule[failures - 1] if failures <= len(schedule) else self.config.retry_every_s
        delivery.next_attempt_at = self._clock.timestamp() + delay * self.config.compression
