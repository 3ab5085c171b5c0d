"""The QuickBooks webhook receiver: ``POST {webhook_path}``.

In this order, and nothing else before the signature is checked:

1. the body is read up to ``webhook_max_body_bytes`` (larger: 413);
2. ``intuit-signature`` must be base64(HMAC-SHA256(verifier token, raw body)) — else 401, logged without the body;
3. the body must be a notification in the legacy or the CloudEvents format — else 400;
4. one ``WebhookReceived`` per organization the company belongs to is put on ``qbsync.webhooks`` and the broker's
   acknowledgement awaited (bounded by ``webhook_ack_timeout_seconds``, inside Intuit's 3 s) — else 503, and
   Intuit retries;
5. 200.

The work happens in the consumer (a targeted pull of the named objects). De-duplication: the event id is derived
from the notification (the CloudEvents ids, or the digest of a legacy body), so a notification Intuit delivers
again carries the same id and the runtime's idempotency processes it once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from aiokafka.errors import KafkaError
from pydantic import ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pull_sync import metrics, store
from qbsync.contracts.outbound import EntityRef, WebhookReceived, WebhookReceivedPayload
from qbsync.persistence.database import Database
from qbsync.qbo.webhooks import WebhookEvent, WebhookPayloadError, parse_webhook, verify_webhook_signature
from qbsync.runtime import Publisher
from qbsync.settings import PullSyncSettings

__all__ = ["WebhookReceiver"]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "intuit-signature"
_NAMESPACE = uuid.UUID("3c7e9b1a-0f52-4a8e-bb0c-6f2d8e4a1b77")
_MAX_ENTITIES = 1_000  # per WebhookReceived (the contract's bound); a larger notification is split


class WebhookReceiver:
    def __init__(self, db: Database, publisher: Publisher, settings: PullSyncSettings) -> None:
        self.db = db
        self.publisher = publisher
        self.settings = settings

    def route(self) -> Route:
        return Route(self.settings.webhook_path, self.receive, methods=["POST"])

    async def receive(self, request: Request) -> Response:
        body = await _read_limited(request, self.settings.webhook_max_body_bytes)
        if body is None:
            return _refuse("too_large", 413, "body too large", request)
        token = self.settings.webhook_verifier_token.get_secret_value()
        if not verify_webhook_signature(body, request.headers.get(SIGNATURE_HEADER), token):
            return _refuse("bad_signature", 401, "invalid signature", request, size=len(body))
        try:
            notification = parse_webhook(body)
        except WebhookPayloadError as exc:
            return _refuse("malformed", 400, str(exc), request, size=len(body))
        kind: Literal["legacy", "cloudevents"] = "cloudevents" if body.lstrip().startswith(b"[") else "legacy"
        try:
            envelopes = await self._envelopes(notification, kind, body)
        except ValidationError as exc:
            return _refuse("malformed", 400, f"notification out of bounds ({exc.error_count()} errors)", request)
        if not envelopes:
            metrics.WEBHOOKS.labels("unknown_realm").inc()
            return JSONResponse({"accepted": 0})
        try:
            await asyncio.wait_for(self.publisher.publish(*envelopes), self.settings.webhook_ack_timeout_seconds)
        except (TimeoutError, KafkaError) as exc:
            log.warning("webhook not queued (%s); answering 503 so Intuit retries", type(exc).__name__)
            metrics.WEBHOOKS.labels("unavailable").inc()
            return JSONResponse({"error": "temporarily unavailable"}, status_code=503)
        metrics.WEBHOOKS.labels("accepted").inc()
        return JSONResponse({"accepted": len(envelopes)})

    async def _envelopes(
        self, notification: Sequence[WebhookEvent], kind: Literal["legacy", "cloudevents"], body: bytes
    ) -> list[WebhookReceived]:
        by_realm: dict[str, list[WebhookEvent]] = {}
        for event in notification:
            by_realm.setdefault(event.realm_id, []).append(event)
        async with self.db.connect() as conn:
            owners = await store.organizations_for_realms(conn, by_realm)
        now = datetime.now(UTC)
        envelopes: list[WebhookReceived] = []
        for realm, realm_events in by_realm.items():
            organizations = owners.get(realm, [])
            if not organizations:
                log.info("webhook for a company no organization is connected to (realm %s); ignored", realm)
                continue
            notification_id = _notification_id(kind, realm_events, body)
            refs = _refs(realm_events)
            if not refs:
                continue
            envelopes.extend(
                _received(org, realm, kind, notification_id, refs[index : index + _MAX_ENTITIES], index, now)
                for org in organizations
                for index in range(0, len(refs), _MAX_ENTITIES)
            )
        return envelopes


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The raw body, or None as soon as it exceeds ``limit`` (declared or actual)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    except ClientDisconnect:
        return b""
    return b"".join(chunks)


def _refuse(outcome: str, status: int, message: str, request: Request, *, size: int | None = None) -> Response:
    """Refuse a request; the log line names the reason, size and peer — never the body or the signature."""
    client = request.client.host if request.client else "?"
    length = f"{size} bytes" if size is not None else "oversized"
    log.warning("webhook refused: %s (%s from %s)", message, length, client)
    metrics.WEBHOOKS.labels(outcome).inc()
    return JSONResponse({"error": message}, status_code=status)


def _notification_id(kind: str, events: Sequence[WebhookEvent], body: bytes) -> str:
    """Stable across Intuit's re-deliveries: the CloudEvents ids when every event has one, else the body's digest."""
    ids = [e.event_id for e in events if e.event_id]
    if kind == "cloudevents" and len(ids) == len(events):
        if len(ids) == 1 and len(ids[0]) <= 200:
            return ids[0]
        return "ce-sha256:" + hashlib.sha256("\n".join(sorted(ids)).encode("utf-8")).hexdigest()
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _refs(events: Sequence[WebhookEvent]) -> list[EntityRef]:
    """The named objects, each once (an aggregated notification may name one object several times)."""
    refs: dict[tuple[str, str, str], EntityRef] = {}
    for event in events:
        key = (event.entity, event.entity_id, event.operation)
        if key in refs:
            continue
        try:
            refs[key] = EntityRef(entity=event.entity, qbo_id=event.entity_id, operation=event.operation)
        except ValidationError:
            log.warning(
                "webhook names an object no QuickBooks id looks like (%s, %d chars); skipped",
                event.entity,
                len(event.entity_id),
            )
    return list(refs.values())


def _received(
    org: uuid.UUID,
    realm: str,
    kind: Literal["legacy", "cloudevents"],
    notification_id: str,
    refs: list[EntityRef],
    index: int,
    now: datetime,
) -> WebhookReceived:
    return WebhookReceived(
        event_id=uuid.uuid5(_NAMESPACE, f"{notification_id}:{realm}:{org}:{index}"),
        event_type="WebhookReceived",
        schema_version=1,
        occurred_at=now,
        organization_id=org,
        entity_id=org,
        entity_version=int(now.timestamp() * 1000),
        payload=WebhookReceivedPayload(
            realm_id=realm, format=kind, notification_id=notification_id, entities=refs, received_at=now
        ),
    )
