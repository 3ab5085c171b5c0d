"""Issue 9, HTTP fuzzing: every HTTP API the project serves answers hostile requests without a server error or a leak.

* the **emulator** — schemathesis over its own ``/openapi.json``, in-process (every operation but the admin calls
  that change the emulator's global behaviour: faults, latency, limits, clock, reset, outbound webhooks);
* **token-manager** — schemathesis over ``openapi_specs.TOKEN_MANAGER_OPENAPI`` against the running process, with and
  without the service credential;
* the **webhook receiver** (pull-sync) — hypothesis bodies (legacy-shaped and arbitrary JSON, unicode, huge numbers)
  *signed* with the verifier token, so they get past the signature check to the parser and the queue.

A response fails the check when its status is 500 or over (a 502/503 is allowed only where the API documents it: a
broker or Intuit being unavailable) or when its body carries a stack trace, SQL, a file path or a secret.
``QBSYNC_FUZZ_HTTP_EXAMPLES`` raises the examples per operation (``make reliability`` runs more).
"""

from __future__ import annotations

import asyncio
import json
import os
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode
from starlette.applications import Starlette

from qbo_emulator import EmulatorConfig, create_app
from qbsync.qbo.webhooks import sign_webhook
from tests.e2e.platform import SERVICE_TOKEN, Platform, platform
from tests.fuzz.openapi_specs import TOKEN_MANAGER_OPENAPI
from tests.fuzz.poison import adversarial_text, json_values

# QBO's query endpoint takes the query as ``application/text`` (the emulator documents it so): send it as plain text.
schemathesis.serializer.alias("application/text", "text/plain")

EXAMPLES = int(os.environ.get("QBSYNC_FUZZ_HTTP_EXAMPLES", "8"))
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
VERIFIER = "qbsync-dev-verifier"
SECRETS = (SERVICE_TOKEN, "qbsync-dev-secret", VERIFIER)
LEAK_MARKERS = (
    "Traceback",
    'File "',
    "site-packages",
    "/work/",
    "sqlalchemy",
    "sqlite3.",
    "psycopg",
    "SELECT ",
    "INSERT INTO",
    "UPDATE ",
    "aiokafka",
)


def assert_safe(response_status: int, body: str, what: str, *, allowed_5xx: tuple[int, ...] = ()) -> None:
    assert response_status < 500 or response_status in allowed_5xx, f"{what}: {response_status} {body[:300]}"
    leaked = [m for m in (*LEAK_MARKERS, *SECRETS) if m in body]
    assert not leaked, f"{what}: the response leaks {leaked}: {body[:300]}"


# ---- the emulator (in-process) ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def emulator_app() -> Starlette:
    return create_app(EmulatorConfig())


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def _fuzz(operation: Any, check: Any) -> None:
    """``EXAMPLES`` valid and invalid requests for one operation (schemathesis' positive and negative modes)."""
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @FUZZ_SETTINGS
    @given(case=strategy)
    def run(case: Any) -> None:
        check(case)

    run()


async def _company_and_token(app: Starlette) -> tuple[str, str]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://qbo.test") as admin:
        realm = str((await admin.post("/_admin/companies", json={"name": "Fuzz Co"})).json()["realm_id"])
        token = (await admin.post(f"/_admin/companies/{realm}/tokens", json={})).json()["access_token"]
    return realm, str(token)


def test_the_emulator_api_never_fails_or_leaks(emulator_app: Starlette) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", emulator_app).exclude(
        path_regex=r"^/_admin/(faults|latency|limits|reset|clock|webhooks)|seed-demo"
    )
    operations = _operations(schema)
    assert len(operations) > 30
    statuses: Counter[int] = Counter()

    # most cases are aimed at a real company with a valid token, so they reach the handlers behind the gateway
    realm, token = asyncio.run(_company_and_token(emulator_app))

    def check(case: Any) -> None:
        for name in ("realmId", "realm_id"):
            if name in (case.path_parameters or {}) and zlib.crc32(str(case.path_parameters[name]).encode()) % 4:
                case.path_parameters[name] = realm
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        statuses[response.status_code] += 1
        assert_safe(response.status_code, response.text, f"{case.method} {case.formatted_path}")

    for operation in operations:
        _fuzz(operation, check)
    print(f"\nemulator: {sum(statuses.values())} requests, {dict(sorted(statuses.items()))}")
    assert any(200 <= s < 300 for s in statuses), "the fuzzer reached working handlers"
    assert any(400 <= s < 500 for s in statuses), "and refusals"


# ---- token-manager (a running process) ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def running(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    workdir: Path = tmp_path_factory.mktemp("http-fuzz")
    with platform(kafka_bootstrap, workdir) as plat:
        plat.start_emulator("--no-limits")
        plat.start("token-manager")
        plat.start("pull-sync")
        yield plat
        for process in plat.processes.values():
            assert process.popen.poll() is None, process.tail()


def test_the_token_manager_api_never_fails_or_leaks(running: Platform) -> None:
    base = running.processes["token-manager"].url
    operations = _operations(schemathesis.openapi.from_dict(TOKEN_MANAGER_OPENAPI))
    assert len(operations) == 9
    statuses: Counter[int] = Counter()

    def check(case: Any) -> None:
        what = f"{case.method} {case.formatted_path}"
        for headers in ({"Authorization": f"Bearer {SERVICE_TOKEN}"}, {}):
            response = case.call(base_url=base, headers=headers, allow_redirects=False, timeout=15)
            statuses[response.status_code] += 1
            # 502 intuit_unavailable and 503 refresh_unavailable are documented answers, never a crash
            assert_safe(response.status_code, response.text, what, allowed_5xx=(502, 503))
            if not headers and case.formatted_path.startswith(("/v1/", "/connect/")):
                assert response.status_code in (401, 404, 405, 413, 422), f"{what} without the credential"

    for operation in operations:
        _fuzz(operation, check)
    print(f"\ntoken-manager: {sum(statuses.values())} requests, {dict(sorted(statuses.items()))}")
    assert {200, 401} <= set(statuses), "the fuzzer reached working handlers and the credential check"


# ---- the webhook receiver (pull-sync) ------------------------------------------------------------------------------
_entity = st.fixed_dictionaries(
    {"name": adversarial_text, "id": adversarial_text, "operation": adversarial_text, "lastUpdated": adversarial_text}
)
_legacy = st.fixed_dictionaries(
    {
        "eventNotifications": st.lists(
            st.fixed_dictionaries(
                {
                    "realmId": st.one_of(adversarial_text, st.integers()),
                    "dataChangeEvent": st.fixed_dictionaries({"entities": st.lists(_entity, max_size=3)}),
                }
            ),
            max_size=3,
        )
    }
)
webhook_bodies = st.one_of(
    _legacy.map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=500),
)


@FUZZ_SETTINGS
@given(body=webhook_bodies)
def test_signed_hostile_webhooks_never_fail_or_leak(running: Platform, body: bytes) -> None:
    url = f"{running.processes['pull-sync'].url}/webhooks/quickbooks"
    headers = {"content-type": "application/json", "intuit-signature": sign_webhook(body, VERIFIER)}
    response = httpx.post(url, content=body, headers=headers, timeout=15)
    # 503: the notification could not be queued (Intuit retries) — documented, never a crash
    assert_safe(response.status_code, response.text, f"webhook {body[:80]!r}", allowed_5xx=(503,))
    assert response.status_code in (200, 400, 503), response.text
