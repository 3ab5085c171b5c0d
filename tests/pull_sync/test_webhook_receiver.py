"""The webhook receiver at its HTTP edge: verify before anything else, both formats, bounded, durable or 503."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from pydantic import SecretStr
from starlette.applications import Starlette

from pull_sync import store
from pull_sync.webhooks import WebhookReceiver
from qbsync.contracts.outbound import WebhookReceived
from qbsync.persistence import Database, upgrade
from qbsync.qbo.webhooks import sign_webhook
from qbsync.runtime import Publisher
from qbsync.runtime.ledger import set_connection_state
from qbsync.settings import DatabaseSettings, PullSyncSettings

TOKEN = "test-verifier-token"
REALM = "9130000000777"
PATH = "/webhooks/quickbooks"


class RecordingPublisher:
    """Stands in for the Kafka publisher: records what was queued, or fails like a broker outage."""

    def __init__(self) -> None:
        self.published: list[WebhookReceived] = []
        self.failure: BaseException | None = None
        self.hang = False

    async def publish(self, *envelopes: Any) -> None:
        if self.hang:
            await asyncio.sleep(30)
        if self.failure is not None:
            raise self.failure
        self.published.extend(envelopes)


@pytest.fixture
async def database(sqlite_database_settings: DatabaseSettings) -> AsyncIterator[Database]:
    db = await Database.open("pull-sync", sqlite_database_settings)
    await upgrade(db, ("runtime", "pull_sync"), version_locations=(store.MIGRATIONS,))
    try:
        yield db
    finally:
        await db.close()


async def _connect(db: Database, realm: str) -> uuid.UUID:
    org = uuid.uuid4()
    async with db.transaction() as conn:
        await set_connection_state(
            conn,
            organization_id=org,
            status="connected",
            realm_id=realm,
            reason=None,
            changed_at=datetime.now(UTC),
            event_id=uuid.uuid4(),
        )
    return org


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
async def client(database: Database, publisher: RecordingPublisher) -> AsyncIterator[httpx.AsyncClient]:
    settings = PullSyncSettings(
        webhook_verifier_token=SecretStr(TOKEN), webhook_max_body_bytes=4_096, webhook_ack_timeout_seconds=0.3
    )
    receiver = WebhookReceiver(database, cast(Publisher, publisher), settings)
    app = Starlette(routes=[receiver.route()])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pull-sync.test") as http:
        yield http


def _legacy(*entities: tuple[str, str, str], realm: str = REALM) -> bytes:
    changes = [
        {"name": n, "id": i, "operation": op, "lastUpdated": "2026-03-05T10:00:00-0800"} for n, i, op in entities
    ]
    body = {"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": changes}}]}
    return json.dumps(body).encode()


def _cloud(*events: tuple[str, str, str, str], realm: str = REALM) -> bytes:
    return json.dumps(
        [
            {
                "specversion": "1.0",
                "id": event_id,
                "source": "intuit.test",
                "type": f"qbo.{entity.lower()}.{operation}.v1",
                "datacontenttype": "application/json",
                "time": "2026-03-05T18:00:00.000Z",
                "intuitentityid": qbo_id,
                "intuitaccountid": realm,
                "data": {},
            }
            for event_id, entity, qbo_id, operation in events
        ]
    ).encode()


async def _post(client: httpx.AsyncClient, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["intuit-signature"] = signature
    return await client.post(PATH, content=body, headers=headers)


async def test_a_signed_legacy_notification_is_queued_for_every_organization_of_the_company(
    client: httpx.AsyncClient, database: Database, publisher: RecordingPublisher
) -> None:
    first, second = await _connect(database, REALM), await _connect(database, REALM)
    body = _legacy(("Invoice", "130", "Update"), ("Payment", "131", "Create"), ("Invoice", "130", "Update"))
    response = await _post(client, body, sign_webhook(body, TOKEN))
    assert response.status_code == 200
    assert response.json() == {"accepted": 2}
    assert {e.organization_id for e in publisher.published} == {first, second}
    received = publisher.published[0].payload
    assert received.format == "legacy"
    assert received.realm_id == REALM
    assert [(r.entity, r.qbo_id, r.operation) for r in received.entities] == [
        ("Invoice", "130", "Update"),
        ("Payment", "131", "Create"),
    ], "each object once"


async def test_a_cloudevents_notification_is_accepted_and_keyed_by_its_event_ids(
    client: httpx.AsyncClient, database: Database, publisher: RecordingPublisher
) -> None:
    org = await _connect(database, REALM)
    body = _cloud(("ev-1", "Payment", "88", "created"), ("ev-2", "Item", "5", "updated"))
    response = await _post(client, body, sign_webhook(body, TOKEN))
    assert response.status_code == 200
    (queued,) = publisher.published
    assert queued.organization_id == org
    assert queued.payload.format == "cloudevents"
    assert [(r.entity, r.qbo_id, r.operation) for r in queued.payload.entities] == [
        ("Payment", "88", "Create"),
        ("Item", "5", "Update"),
    ]
    reordered = _cloud(("ev-2", "Item", "5", "updated"), ("ev-1", "Payment", "88", "created"))
    await _post(client, reordered, sign_webhook(reordered, TOKEN))
    assert publisher.published[1].event_id == queued.event_id, "the same notification delivered again, same id"


async def test_a_repeated_notification_carries_the_same_event_id(
    client: httpx.AsyncClient, database: Database, publisher: RecordingPublisher
) -> None:
    await _connect(database, REALM)
    body = _legacy(("Invoice", "7", "Update"))
    for _ in range(2):
        assert (await _post(client, body, sign_webhook(body, TOKEN))).status_code == 200
    other = _legacy(("Invoice", "8", "Update"))
    await _post(client, other, sign_webhook(other, TOKEN))
    ids = [e.event_id for e in publisher.published]
    assert ids[0] == ids[1]
    assert ids[2] != ids[0]


async def test_forged_altered_and_unsigned_notifications_are_rejected_before_anything_is_read(
    client: httpx.AsyncClient, database: Database, publisher: RecordingPublisher, caplog: pytest.LogCaptureFixture
) -> None:
    await _connect(database, REALM)
    body = _legacy(("Invoice", "SECRET-MARKER-991", "Update"))
    altered = body.replace(b"Update", b"Delete")
    caplog.set_level(logging.INFO)
    cases = [
        (body, sign_webhook(body, "someone-elses-token")),
        (altered, sign_webhook(body, TOKEN)),
        (body, None),
        (body, "not base64 at all!"),
        (body, ""),
    ]
    for payload, signature in cases:
        response = await _post(client, payload, signature)
        assert response.status_code == 401, (signature, response.text)
    assert publisher.published == []
    assert "SECRET-MARKER-991" not in caplog.text, "a rejected body is never logged"
    assert caplog.text.count("invalid signature") == len(cases)


async def test_oversized_and_malformed_bodies_are_refused(
    client: httpx.AsyncClient, publisher: RecordingPublisher
) -> None:
    huge = b"[" + b" " * 5_000 + b"]"
    assert (await _post(client, huge, sign_webhook(huge, TOKEN))).status_code == 413
    not_json = b"{not json"
    assert (await _post(client, not_json, sign_webhook(not_json, TOKEN))).status_code == 400
    wrong_shape = json.dumps({"hello": "world"}).encode()
    assert (await _post(client, wrong_shape, sign_webhook(wrong_shape, TOKEN))).status_code == 400
    assert publisher.published == []


async def test_a_company_no_organization_is_connected_to_is_acknowledged_and_ignored(
    client: httpx.AsyncClient, publisher: RecordingPublisher
) -> None:
    body = _legacy(("Invoice", "1", "Update"), realm="1234")
    response = await _post(client, body, sign_webhook(body, TOKEN))
    assert response.status_code == 200
    assert response.json() == {"accepted": 0}
    assert publisher.published == []


@pytest.mark.parametrize("outage", ["broker error", "broker too slow"])
async def test_a_notification_that_cannot_be_queued_gets_503_so_intuit_retries(
    outage: str, client: httpx.AsyncClient, database: Database, publisher: RecordingPublisher
) -> None:
    await _connect(database, REALM)
    if outage == "broker error":
        publisher.failure = KafkaConnectionError("broker down")
    else:
        publisher.hang = True
    body = _legacy(("Invoice", "1", "Update"))
    response = await _post(client, body, sign_webhook(body, TOKEN))
    assert response.status_code == 503
    assert publisher.published == []
