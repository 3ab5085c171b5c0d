"""Webhooks: both payload formats, the HMAC signature, aggregation, Intuit's retry schedule, ordering."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from quickbooks.client import QuickBooks
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from qbo_emulator import DEV_VERIFIER_TOKEN, EmulatorConfig, EmulatorCore, WebhookConfig, create_app
from tests.emulator.helpers import Api, line, wait_until
from tests.fixtures.emulator import serve_asgi


@dataclass
class Receiver:
    """A webhook endpoint that records every call and fails the first ``fail_first`` of them."""

    fail_first: int = 0
    delay_s: float = 0.0
    calls: list[tuple[float, bytes, dict[str, str], int]] = field(default_factory=list)

    @property
    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            status = 500 if len(self.calls) < self.fail_first else 200
            self.calls.append((time.monotonic(), body, dict(request.headers), status))
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            return Response(status_code=status)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    def delivered(self) -> list[Any]:
        return [json.loads(body) for _, body, _, status in self.calls if status == 200]


@dataclass
class Rig:
    core: EmulatorCore
    api: Api
    receiver: Receiver
    admin: httpx.AsyncClient

    async def subscribe(self, **options: Any) -> dict[str, Any]:
        response = await self.admin.post("/_admin/webhooks", json={"url": "http://hooks.test/hook", **options})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def webhook_config() -> WebhookConfig:
    return WebhookConfig(aggregation_window_s=0.05, compression=0.001)


@pytest.fixture
async def rig(receiver: Receiver, webhook_config: WebhookConfig) -> AsyncIterator[Rig]:
    core = EmulatorCore(
        EmulatorConfig(webhooks=webhook_config), webhook_transport=httpx.ASGITransport(app=receiver.app)
    )
    app = create_app(core=core)
    realm = core.create_company(name="Hooked").realm_id
    grant = core.oauth.new_grant("qbsync-dev-client", realm, ["com.intuit.quickbooks.accounting"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://qbo.test") as client:
        yield Rig(core, Api(client, realm, core.oauth.issue_for(grant)["access_token"]), receiver, client)
    await core.aclose()


def expected_signature(body: bytes) -> str:
    return base64.b64encode(hmac.new(DEV_VERIFIER_TOKEN.encode(), body, hashlib.sha256).digest()).decode()


async def test_legacy_notification_is_signed_with_the_verifier_token(rig: Rig) -> None:
    await rig.subscribe(format="legacy")
    customer = await rig.api.create("Customer", {"DisplayName": "Hooked One"})
    await wait_until(lambda: len(rig.receiver.calls) == 1)
    _, body, headers, _ = rig.receiver.calls[0]
    assert headers["intuit-signature"] == expected_signature(body)
    assert QuickBooks(minorversion=75).validate_webhook_signature(
        body.decode(), headers["intuit-signature"], DEV_VERIFIER_TOKEN
    )
    assert not QuickBooks(minorversion=75).validate_webhook_signature(
        body.decode(), headers["intuit-signature"], "wrong-token"
    )
    notification = json.loads(body)["eventNotifications"][0]
    assert notification["realmId"] == rig.api.realm
    entity = notification["dataChangeEvent"]["entities"][0]
    assert (entity["name"], entity["id"], entity["operation"]) == ("Customer", customer["Id"], "Create")
    assert entity["lastUpdated"][:19] == customer["MetaData"]["LastUpdatedTime"][:19]


async def test_cloudevents_notification_is_an_array_of_events(rig: Rig) -> None:
    await rig.subscribe(format="cloudevents")
    customer = await rig.api.create("Customer", {"DisplayName": "Cloud"})
    await wait_until(lambda: len(rig.receiver.calls) == 1)
    _, body, headers, _ = rig.receiver.calls[0]
    assert headers["intuit-signature"] == expected_signature(body)
    events = json.loads(body)
    assert isinstance(events, list)
    event = events[0]
    assert event["specversion"] == "1.0"
    assert event["type"] == "qbo.customer.created.v1"
    assert event["intuitentityid"] == customer["Id"]
    assert event["intuitaccountid"] == rig.api.realm
    assert event["source"].startswith("intuit.")
    assert event["time"].endswith("Z")
    assert event["data"] == {}


async def test_events_within_the_window_are_aggregated(rig: Rig) -> None:
    await rig.subscribe()
    for n in range(3):
        await rig.api.create("Customer", {"DisplayName": f"Batch {n}"})
    await wait_until(lambda: len(rig.receiver.calls) >= 1)
    await asyncio.sleep(0.1)
    entities = rig.receiver.delivered()[0]["eventNotifications"][0]["dataChangeEvent"]["entities"]
    assert [e["operation"] for e in entities] == ["Create"] * 3
    assert len(rig.receiver.calls) == 1


async def test_update_delete_void_and_emailed_operations(rig: Rig) -> None:
    await rig.subscribe(entities=["Invoice"])
    buyer = await rig.api.create("Customer", {"DisplayName": "Ops", "PrimaryEmailAddr": {"Address": "o@example.com"}})
    first = await rig.api.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [line(5)]})
    await rig.api.post("invoice", {"Id": first["Id"], "SyncToken": "0", "sparse": True, "PrivateNote": "n"})
    await rig.api.post(f"invoice/{first['Id']}/send", {})
    await rig.api.post("invoice", {"Id": first["Id"], "SyncToken": "2"}, operation="void")
    second = await rig.api.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [line(5)]})
    await rig.api.post("invoice", {"Id": second["Id"], "SyncToken": "0"}, operation="delete")

    def operations() -> list[tuple[str, str]]:
        return [
            (e["id"], e["operation"])
            for note in rig.receiver.delivered()
            for e in note["eventNotifications"][0]["dataChangeEvent"]["entities"]
        ]

    await wait_until(lambda: len(operations()) == 6)
    assert operations() == [
        (first["Id"], "Create"),
        (first["Id"], "Update"),
        (first["Id"], "Emailed"),
        (first["Id"], "Void"),
        (second["Id"], "Create"),
        (second["Id"], "Delete"),
    ]


@pytest.mark.parametrize("receiver", [Receiver(fail_first=3)])
async def test_failures_are_retried_on_intuits_schedule_compressed(rig: Rig) -> None:
    subscription = await rig.subscribe()
    await rig.api.create("Customer", {"DisplayName": "Retry"})
    await wait_until(lambda: len(rig.receiver.delivered()) == 1)
    stamps = [at for at, *_ in rig.receiver.calls]
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    assert len(gaps) == 3
    for gap, scheduled in zip(gaps, (10, 20, 30), strict=True):
        assert gap >= scheduled * 0.001  # not before it is due
    deliveries = (
        await rig.admin.get("/_admin/webhooks/deliveries", params={"subscription_id": subscription["id"]})
    ).json()
    assert [d["status"] for d in deliveries] == ["delivered"]
    assert [a["status"] for a in deliveries[0]["attempts"]] == [500, 500, 500, 200]


@pytest.mark.parametrize("receiver", [Receiver(delay_s=0.3)])
@pytest.mark.parametrize(
    "webhook_config", [WebhookConfig(aggregation_window_s=0.01, ack_timeout_s=0.1, compression=0.001, max_attempts=2)]
)
async def test_slow_acknowledgements_count_as_failures(rig: Rig) -> None:
    await rig.subscribe()
    await rig.api.create("Customer", {"DisplayName": "Slow Ack"})
    await wait_until(lambda: any(d.status == "failed" for d in rig.core.webhooks.deliveries))
    delivery = rig.core.webhooks.deliveries[0]
    assert len(delivery.attempts) == 2
    assert all(a.error for a in delivery.attempts)


@pytest.mark.parametrize("receiver", [Receiver(fail_first=1)])
@pytest.mark.parametrize("webhook_config", [WebhookConfig(aggregation_window_s=0.01, compression=1.0)])
async def test_later_events_wait_for_the_earlier_delivery_and_the_clock_makes_retries_due(rig: Rig) -> None:
    await rig.subscribe()
    first = await rig.api.create("Customer", {"DisplayName": "First"})
    await wait_until(lambda: len(rig.receiver.calls) == 1)
    second = await rig.api.create("Customer", {"DisplayName": "Second"})
    await asyncio.sleep(0.2)
    assert len(rig.receiver.calls) == 1  # the retry is 10 s away and the second event is held
    rig.core.clock.advance(11)
    await wait_until(lambda: len(rig.receiver.delivered()) == 2)
    ids = [n["eventNotifications"][0]["dataChangeEvent"]["entities"][0]["id"] for n in rig.receiver.delivered()]
    assert ids == [first["Id"], second["Id"]]


async def test_entity_filter_and_unsubscribe(rig: Rig) -> None:
    subscription = await rig.subscribe(entities=["Invoice"])
    await rig.api.create("Customer", {"DisplayName": "Ignored"})
    await asyncio.sleep(0.2)
    assert rig.receiver.calls == []
    listed = (await rig.admin.get("/_admin/webhooks")).json()
    assert [s["id"] for s in listed] == [subscription["id"]]
    assert (await rig.admin.delete(f"/_admin/webhooks/{subscription['id']}")).json() == {"removed": True}


async def test_accountant_actions_are_notified(rig: Rig) -> None:
    await rig.subscribe(entities=["Payment", "Invoice"])
    buyer = await rig.api.create("Customer", {"DisplayName": "Paying"})
    invoice = await rig.api.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [line(50)]})
    paid = await rig.admin.post(
        f"/_admin/companies/{rig.api.realm}/accountant/payments",
        json={"customer_id": buyer["Id"], "amount": 20, "invoice_id": invoice["Id"]},
    )
    assert paid.status_code == 201

    def seen() -> set[tuple[str, str]]:
        return {
            (e["name"], e["operation"])
            for note in rig.receiver.delivered()
            for e in note["eventNotifications"][0]["dataChangeEvent"]["entities"]
        }

    await wait_until(lambda: {("Payment", "Create"), ("Invoice", "Update")} <= seen())


async def test_delivery_to_a_real_http_endpoint() -> None:
    receiver = Receiver()
    with serve_asgi(receiver.app) as (base_url, _):
        core = EmulatorCore(EmulatorConfig(webhooks=WebhookConfig(aggregation_window_s=0.01)))
        app = create_app(core=core)
        realm = core.create_company(name="Real").realm_id
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://qbo.test") as client:
            await client.post("/_admin/webhooks", json={"url": f"{base_url}/hook"})
            token = (await client.post(f"/_admin/companies/{realm}/tokens", json={})).json()["access_token"]
            await Api(client, realm, token).create("Customer", {"DisplayName": "Over HTTP"})
            await wait_until(lambda: len(receiver.calls) == 1)
        await core.aclose()
    _, body, headers, _ = receiver.calls[0]
    assert headers["intuit-signature"] == expected_signature(body)
