"""Issue 9, security: the running platform (separate processes, every logger at DEBUG) against a hostile world.

One platform for the module: the emulator (with a state file, so every token it issued can be read back),
token-manager, customer-sync and pull-sync; organizations A and B connected to companies A and B through the real
connect flow. Then:

* an event naming A writes only to A's company; an event naming an organization that never connected, or whose
  record key names another organization, writes nowhere; a realm altered in the connect callback is refused; A's
  access token is refused by B's company;
* the OAuth ``state``: forged, altered to another organization, replayed — refused, nothing stored;
* webhooks: forged, tampered, unsigned — 401; a replay is accepted but carries the same event id (processed once);
* names that would inject into a QBO query are sent as data: the exact customer is created, no other is touched;
* a body over the limit gets 413 from every HTTP endpoint of every process, and every process keeps serving;
* tokens at rest: no issued token appears in token-manager's database files; and, last, no token or secret value of
  the run appears in any process's log.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from qbsync.contracts.batchly import CustomerCreated, CustomerPayload, OrganizationPayload, OrganizationUpserted
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.qbo.webhooks import sign_webhook
from qbsync.topics import QBSYNC_SYNC_RESULTS, QBSYNC_WEBHOOKS
from tests.e2e.platform import SERVICE_TOKEN, Platform, platform
from tests.reliability.kafka_io import produce, read_topic

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

VERIFIER = "qbsync-dev-verifier"
AUTH = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
DEBUG = {"QBSYNC_LOGGING__LEVEL": "DEBUG"}
#: Over every limit: token-manager and the services (1 MiB), the webhook receiver (256 KiB), the emulator (10 MiB).
OVERSIZED = b"x" * (11 * 1024 * 1024)


class World:
    def __init__(self, plat: Platform, workdir: Path) -> None:
        self.plat = plat
        self.workdir = workdir
        self.org_a, self.org_b = uuid.uuid4(), uuid.uuid4()
        self.realm_a = plat.create_company(name="Company A")
        self.realm_b = plat.create_company(name="Company B")

    @property
    def tm(self) -> str:
        return self.plat.processes["token-manager"].url

    def token(self, org: uuid.UUID) -> str:
        response = httpx.get(f"{self.tm}/v1/organizations/{org}/token", headers=AUTH, timeout=10)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def names(self, realm: str) -> list[str]:
        return sorted(str(row["DisplayName"]) for row in self.plat.rows(realm, "Customer"))


@pytest.fixture(scope="module")
def world(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("security")
    with platform(kafka_bootstrap, workdir) as plat:
        plat.start_emulator("--no-limits", "--state-file", str(workdir / "emulator.db"))
        w = World(plat, workdir)
        plat.start("token-manager", **DEBUG)
        plat.connect(w.org_a, w.realm_a)
        plat.connect(w.org_b, w.realm_b)
        plat.start("customer-sync", **DEBUG)
        plat.start("pull-sync", **DEBUG)
        yield w


# ---- helpers -------------------------------------------------------------------------------------------------------
def _organization(org: uuid.UUID) -> OrganizationUpserted:
    return OrganizationUpserted(
        event_id=uuid.uuid4(),
        event_type="OrganizationUpserted",
        schema_version=1,
        occurred_at=datetime.now(UTC),
        organization_id=org,
        entity_id=org,
        entity_version=1,
        payload=OrganizationPayload(organization_id=org, name=f"Org {org.hex[:6]}", customer_update_mode="immediate"),
    )


def _customer(org: uuid.UUID, name: str) -> CustomerCreated:
    customer_id = uuid.uuid4()
    return CustomerCreated(
        event_id=uuid.uuid4(),
        event_type="CustomerCreated",
        schema_version=1,
        occurred_at=datetime.now(UTC),
        organization_id=org,
        entity_id=customer_id,
        entity_version=1,
        payload=CustomerPayload(customer_id=customer_id, display_name=name),
    )


def _results_for(documents: list[dict[str, Any]], event_id: uuid.UUID) -> list[dict[str, Any]]:
    return [d for d in documents if d["payload"].get("source_event_id") == str(event_id)]


# ---- tenant isolation ----------------------------------------------------------------------------------------------
def test_an_event_of_one_organization_never_writes_to_another_company(kafka_bootstrap: str, world: World) -> None:
    plat = world.plat
    stranger = uuid.uuid4()  # an organization that never connected QuickBooks
    for_a = _customer(world.org_a, "Tenant Alpha Only")
    for_b = _customer(world.org_b, "Tenant Beta Only")
    forged_org = _customer(stranger, "Forged Stranger Co")
    forged_key = _customer(world.org_a, "Forged Key Co")  # the envelope says A, the record key says B
    records: list[tuple[AnyEnvelope, bytes | None]] = [
        (_organization(world.org_a), None),
        (_organization(world.org_b), None),
        (_organization(stranger), None),
        (for_a, None),
        (for_b, None),
        (forged_org, None),
        (forged_key, str(world.org_b).encode()),
    ]
    asyncio.run(produce(kafka_bootstrap, plat.prefix, records))

    def settled(documents: list[dict[str, Any]]) -> bool:
        done = {
            e.event_id
            for e in (for_a, for_b)
            if any(d["event_type"] == "SyncCompleted" for d in _results_for(documents, e.event_id))
        }
        parked = any(d["payload"].get("status") == "parked" for d in _results_for(documents, forged_org.event_id))
        return len(done) == 2 and parked

    results = asyncio.run(read_topic(kafka_bootstrap, plat.prefix + QBSYNC_SYNC_RESULTS, settled))
    assert settled(results), results[-5:]
    assert world.names(world.realm_a) == ["Tenant Alpha Only"]
    assert world.names(world.realm_b) == ["Tenant Beta Only"]
    # the stranger's event is parked (no connection), never written; the forged key is dead-lettered as malformed
    assert not any(d["event_type"] == "SyncCompleted" for d in _results_for(results, forged_org.event_id))
    assert not any(d["event_type"] == "SyncCompleted" for d in _results_for(results, forged_key.event_id))
    dead = asyncio.run(
        read_topic(kafka_bootstrap, plat.prefix + "qbsync.customer-sync.dlt", lambda docs: len(docs) >= 1, 30)
    )
    assert [d["event_id"] for d in dead] == [str(forged_key.event_id)]


def test_a_token_of_one_company_is_refused_by_another(world: World) -> None:
    emulator = world.plat.emulator
    assert emulator is not None
    token_a = world.token(world.org_a)
    url = f"{emulator.url}/v3/company/{world.realm_b}/companyinfo/{world.realm_b}"
    refused = httpx.get(url, headers={"Authorization": f"Bearer {token_a}", "Accept": "application/json"})
    assert refused.status_code == 403
    allowed = httpx.get(
        url, headers={"Authorization": f"Bearer {world.token(world.org_b)}", "Accept": "application/json"}
    )
    assert allowed.status_code == 200
    # token-manager hands each organization the realm of its own connection, which is what services call
    status = httpx.get(f"{world.tm}/v1/organizations/{world.org_a}/token", headers=AUTH).json()
    assert status["realm_id"] == world.realm_a


# ---- the OAuth state -----------------------------------------------------------------------------------------------
def _start(world: World, org: uuid.UUID, realm: str) -> str:
    """Start a connect and consent at 'Intuit'; returns the callback URL the browser would be sent to."""
    world.plat.admin("POST", "/oauth/consent", json={"realm_id": realm})
    with httpx.Client(timeout=30) as http:
        to_intuit = http.get(f"{world.tm}/connect/{org}", headers=AUTH)
        assert to_intuit.status_code == 302
        back = http.get(to_intuit.headers["location"])
        assert back.status_code in (302, 303), back.text
        return str(back.headers["location"])


def _with(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return parts._replace(query=urlencode(query)).geturl()


def test_forged_altered_replayed_and_realm_swapped_callbacks_are_refused(world: World) -> None:
    victim, attacker = uuid.uuid4(), uuid.uuid4()
    spare_realm = world.plat.create_company(name="Spare Co")
    accept = {"Accept": "application/json"}
    callback = _start(world, attacker, spare_realm)
    state = parse_qs(urlsplit(callback).query)["state"][0]
    forged = "v1." + ".".join([uuid.uuid4().hex, victim.hex, "9999999999", "0" * 64])
    altered = state.replace(attacker.hex, victim.hex)
    assert altered != state
    for bad_state in (forged, altered, "", "v1...."):
        refused = httpx.get(_with(callback, state=bad_state), headers=accept)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid_state", refused.text
    # the realm swapped for one that is taken (B's) or that the code was not issued for: refused, nothing stored
    for realm in (world.realm_b, world.plat.create_company(name="Other")):
        swapped = httpx.get(_with(_start(world, attacker, spare_realm), realmId=realm), headers=accept)
        assert swapped.status_code == 409, swapped.text
        assert swapped.json()["error"] in ("realm_taken", "realm_unverified"), swapped.text
        assert httpx.get(f"{world.tm}/v1/organizations/{attacker}/connection", headers=AUTH).status_code == 404
    # a fresh flow completes once; its URL replayed is refused
    callback = _start(world, attacker, spare_realm)
    assert httpx.get(callback, headers=accept).status_code == 200
    replayed = httpx.get(callback, headers=accept)
    assert replayed.status_code == 400
    assert replayed.json()["reason"] == "replayed"
    assert httpx.get(f"{world.tm}/v1/organizations/{victim}/connection", headers=AUTH).status_code == 404
    b_status = httpx.get(f"{world.tm}/v1/organizations/{world.org_b}/connection", headers=AUTH).json()
    assert b_status["status"] == "connected"
    assert b_status["realm_id"] == world.realm_b


# ---- webhooks ------------------------------------------------------------------------------------------------------
def test_forged_tampered_and_replayed_webhooks(kafka_bootstrap: str, world: World) -> None:
    url = f"{world.plat.processes['pull-sync'].url}/webhooks/quickbooks"
    body = json.dumps(
        {
            "eventNotifications": [
                {
                    "realmId": world.realm_a,
                    "dataChangeEvent": {
                        "entities": [
                            {"name": "Item", "id": "1", "operation": "Update", "lastUpdated": "2026-03-02T10:00:00Z"}
                        ]
                    },
                }
            ]
        }
    ).encode()
    signature = sign_webhook(body, VERIFIER)
    tampered = body.replace(b'"id": "1"', b'"id": "2"')
    headers = {"content-type": "application/json"}
    assert httpx.post(url, content=body, headers=headers).status_code == 401  # unsigned
    forged = sign_webhook(body, "not-the-verifier")
    assert httpx.post(url, content=body, headers=headers | {"intuit-signature": forged}).status_code == 401
    assert httpx.post(url, content=tampered, headers=headers | {"intuit-signature": signature}).status_code == 401
    first = httpx.post(url, content=body, headers=headers | {"intuit-signature": signature})
    replay = httpx.post(url, content=body, headers=headers | {"intuit-signature": signature})
    assert (first.status_code, replay.status_code) == (200, 200)
    queued = asyncio.run(
        read_topic(kafka_bootstrap, world.plat.prefix + QBSYNC_WEBHOOKS, lambda docs: len(docs) >= 2, 30)
    )
    assert len(queued) == 2
    assert len({d["event_id"] for d in queued}) == 1, "a replay is the same event: the runtime processes it once"


# ---- query injection -----------------------------------------------------------------------------------------------
def test_names_that_would_inject_into_a_query_are_only_data(kafka_bootstrap: str, world: World) -> None:
    plat = world.plat
    victim = plat.admin(
        "POST",
        f"/companies/{world.realm_a}/accountant/write",
        json={"entity": "Customer", "operation": "create", "body": {"DisplayName": "Victim Holdings"}},
    )["Customer"]
    hostile = [
        "Victim Holdings' OR DisplayName LIKE '%",
        "O\\' OR ''='",
        "x' ORDER BY Id --",
        "Robert'); DELETE FROM Customer; --",
    ]
    events = [_customer(world.org_a, name) for name in hostile]
    asyncio.run(produce(kafka_bootstrap, plat.prefix, [(e, None) for e in events]))

    def settled(documents: list[dict[str, Any]]) -> bool:
        return all(
            any(d["event_type"] in ("SyncCompleted", "SyncFailed") for d in _results_for(documents, e.event_id))
            for e in events
        )

    results = asyncio.run(read_topic(kafka_bootstrap, plat.prefix + QBSYNC_SYNC_RESULTS, settled))
    assert settled(results)
    rows = {str(r["DisplayName"]): r for r in plat.rows(world.realm_a, "Customer")}
    for event in events:
        outcome = [d for d in _results_for(results, event.event_id) if d["event_type"] == "SyncCompleted"]
        assert outcome, _results_for(results, event.event_id)
        assert outcome[0]["payload"]["action"] == "created"
        assert outcome[0]["payload"]["qbo_id"] == rows[event.payload.display_name]["Id"]
    assert rows["Victim Holdings"]["SyncToken"] == victim["SyncToken"], "the victim was not touched"


# ---- request size limits -------------------------------------------------------------------------------------------
def test_every_http_endpoint_refuses_an_oversized_body_with_413(world: World) -> None:
    plat = world.plat
    assert plat.emulator is not None
    tm, emulator = world.tm, plat.emulator.url
    org = world.org_a
    targets = [
        ("POST", f"{tm}/v1/organizations/{org}/token/unauthorized"),
        ("GET", f"{tm}/v1/organizations/{org}/token"),
        ("GET", f"{tm}/oauth/callback"),
        ("POST", f"{tm}/v1/organizations/{org}/disconnect"),
        ("GET", f"{tm}/health"),
        ("POST", f"{plat.processes['pull-sync'].url}/webhooks/quickbooks"),
        ("GET", f"{plat.processes['pull-sync'].url}/metrics"),
        ("GET", f"{plat.processes['customer-sync'].url}/health"),
        ("POST", f"{emulator}/v3/company/{world.realm_a}/customer"),
        ("POST", f"{emulator}/v3/company/{world.realm_a}/batch"),
        ("POST", f"{emulator}/oauth2/v1/tokens/bearer"),
        ("POST", f"{emulator}/_admin/companies"),
    ]
    for method, url in targets:
        response = httpx.request(method, url, content=OVERSIZED, headers=AUTH | {"content-type": "application/json"})
        assert response.status_code == 413, f"{method} {url}: {response.status_code} {response.text[:200]}"
    for process in [*plat.processes.values(), plat.emulator]:
        assert process.popen.poll() is None, process.tail()
        assert httpx.get(f"{process.url}/health").status_code == 200
    assert httpx.get(f"{tm}/v1/organizations/{org}/connection", headers=AUTH).json()["status"] == "connected"


# ---- secrets at rest and in logs (last: it reads everything the module's run produced) -----------------------------
def _issued_tokens(workdir: Path) -> set[str]:
    with closing(sqlite3.connect(workdir / "emulator.db")) as db:
        row = db.execute("SELECT value FROM kv WHERE key = 'state'").fetchone()
    oauth = json.loads(row[0])["oauth"]
    found = {str(g["refresh_token"]) for g in oauth["grants"]}
    for grant in oauth["grants"]:
        found |= set(grant["superseded"])
    return found | set(oauth["access"])


def test_zz_no_token_at_rest_in_clear_and_no_secret_in_any_log(world: World) -> None:
    live = {world.token(world.org_a), world.token(world.org_b)}
    tokens = _issued_tokens(world.workdir) | live
    assert len(tokens) >= 4
    database_bytes = b"".join(p.read_bytes() for p in (world.workdir / "data").glob("token-manager*") if p.is_file())
    assert database_bytes, "token-manager's database files were found"
    assert not [t for t in tokens if t.encode() in database_bytes], "a token is stored in clear"
    key_file = world.workdir / "data" / "token-manager.key"
    secrets = tokens | {SERVICE_TOKEN, "qbsync-dev-secret", VERIFIER}
    if key_file.exists():
        secrets |= {line.strip() for line in key_file.read_text().splitlines() if line.strip()}
    logs = {p.name: p.read_text(errors="replace") for p in world.workdir.glob("*.log")}
    assert sum(len(text) for text in logs.values()) > 10_000, "the DEBUG logs were written"
    leaks = [(name, s[:4]) for name, text in logs.items() for s in secrets if s in text]
    assert not leaks, f"secrets in logs: {leaks}"
