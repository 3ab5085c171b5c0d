"""Contract: every error class, the 401 refresh hook and in-place retries, against the emulator over real HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import uuid4

import httpx
import pytest
from prometheus_client import REGISTRY

from qbsync.qbo import (
    QboAuthenticationError,
    QboAuthLostError,
    QboClient,
    QboDuplicateDocNumberError,
    QboDuplicateNameError,
    QboForbiddenError,
    QboNotFoundError,
    QboQuery,
    QboServerError,
    QboStaleObjectError,
    QboThrottledError,
    QboTransportError,
    QboValidationError,
)
from tests.qbo_client.conftest import Live, OAuthTokenProvider, client_settings
from tests.qbo_client.test_contract_operations import new_customer, sales_line, service_item


class CountingTransport(httpx.AsyncBaseTransport):
    """Real HTTP, with a tally of the statuses (and transport failures) the client saw on the wire."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.statuses: list[int | str] = []
        self.request_ids: list[str | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.request_ids.append(request.url.params.get("requestid"))
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TransportError as exc:
            self.statuses.append(type(exc).__name__)
            raise
        self.statuses.append(response.status_code)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def counted_client(live: Live, **overrides: Any) -> tuple[QboClient, CountingTransport]:
    transport = CountingTransport()
    settings = client_settings(live.server.base_url, **overrides)
    return QboClient(settings, live.tokens, transport=transport, jitter=lambda d: 0.0), transport


# ------------------------------------------------------------------------------------------- business faults


async def test_duplicate_name_across_customers_and_vendors(live: Live) -> None:
    await new_customer(live, "Acme Supply", "dup-1")
    with pytest.raises(QboDuplicateNameError) as info:
        await new_customer(live, "Acme Supply", "dup-2")
    assert (info.value.status, info.value.code) == (400, "6240")
    assert info.value.intuit_tid
    with pytest.raises(QboDuplicateNameError):
        await live.company.create("Vendor", {"DisplayName": "Acme Supply"}, request_id="dup-3")


async def test_stale_synctoken(live: Live) -> None:
    customer = await new_customer(live, "Stale Sam", "st-1")
    await live.company.update("Customer", {"Id": customer["Id"], "SyncToken": "0", "Notes": "a"}, request_id="st-2")
    with pytest.raises(QboStaleObjectError) as info:
        await live.company.update("Customer", {"Id": customer["Id"], "SyncToken": "0", "Notes": "b"}, request_id="st-3")
    assert info.value.code == "5010"


async def test_duplicate_docnumber_unless_allowed(live: Live) -> None:
    item = await service_item(live)
    customer = await new_customer(live, "Doc Num", "dn-c")
    body = {"CustomerRef": {"value": customer["Id"]}, "DocNumber": "D-1", "Line": [sales_line(item["Id"], 1, "5")]}
    await live.company.create("Invoice", body, request_id="dn-1")
    with pytest.raises(QboDuplicateDocNumberError) as info:
        await live.company.create("Invoice", body, request_id="dn-2")
    assert info.value.code == "6140"
    allowed = await live.company.create("Invoice", body, request_id="dn-3", params={"include": "allowduplicatedocnum"})
    assert allowed["DocNumber"] == "D-1"


async def test_validation_faults(live: Live) -> None:
    item = await service_item(live)
    customer = await new_customer(live, "Valid Val", "v-c")
    with pytest.raises(QboValidationError) as too_long:
        await new_customer(live, "N" * 501, "v-1")
    assert too_long.value.code == "2050"
    with pytest.raises(QboValidationError):
        await new_customer(live, "Parent:Child", "v-2")
    bad_line = sales_line(item["Id"], 2, "10.00") | {"Amount": Decimal("25.00")}
    with pytest.raises(QboValidationError) as mismatch:
        await live.company.create(
            "Invoice", {"CustomerRef": {"value": customer["Id"]}, "Line": [bad_line]}, request_id="v-3"
        )
    assert mismatch.value.code == "6070"
    with pytest.raises(QboValidationError) as parse:
        await live.company.query("SELECT * FROM Customer WHERE DisplayName = 'unterminated")
    assert parse.value.code == "4000"


async def test_not_found_is_610_with_http_400(live: Live) -> None:
    with pytest.raises(QboNotFoundError) as info:
        await live.company.read("Customer", "987654")
    assert (info.value.status, info.value.code) == (400, "610")


async def test_requestid_replay_returns_the_original_instead_of_a_second_entity(live: Live) -> None:
    first = await live.company.create("Customer", {"DisplayName": "Replay Rita"}, request_id="evt-77-create")
    again = await live.company.create("Customer", {"DisplayName": "Replay Rita"}, request_id="evt-77-create")
    assert again == first  # without the replay this would be a 6240 duplicate name
    assert [r["Id"] for r in await live.rows("Customer") if r["DisplayName"] == "Replay Rita"] == [first["Id"]]


# ------------------------------------------------------------------------------------------- auth


async def test_expired_access_token_is_refreshed_once_and_the_call_succeeds(live: Live) -> None:
    await live.company.read("Customer", (await new_customer(live, "Before Expiry", "ax-1"))["Id"])
    expired = await live.admin.post(f"/_admin/companies/{live.realm_id}/expire-access-tokens")
    assert expired.json()["expired_access_tokens"] >= 1
    created = await new_customer(live, "After Expiry", "ax-2")
    assert created["DisplayName"] == "After Expiry"
    assert live.tokens.refreshes == 1


async def test_a_401_that_survives_the_refresh_is_an_authentication_error(live: Live) -> None:
    await live.add_fault(kind="unauthorized", operation="read", next_n=2)
    with pytest.raises(QboAuthenticationError) as info:
        await live.company.read("Customer", "1")
    assert (info.value.status, info.value.code) == (401, "3200")
    assert live.tokens.refreshes == 1  # exactly one refresh, then give up


async def test_revoked_connection_is_auth_lost(live: Live) -> None:
    revoked = await live.admin.post(f"/_admin/companies/{live.realm_id}/revoke")
    assert revoked.json()["revoked_grants"] >= 1
    with pytest.raises(QboAuthLostError):
        await live.company.read("Customer", "1")


async def test_token_of_another_company_is_forbidden(live: Live) -> None:
    other_realm = live.server.create_company(name="Someone Else")
    org = uuid4()
    provider = OAuthTokenProvider(live.server.base_url, org, other_realm, live.server.issue_tokens(live.realm_id))
    async with QboClient(client_settings(live.server.base_url), provider) as client:
        with pytest.raises(QboForbiddenError) as info:
            await client.company(org).read("Customer", "1")
    assert (info.value.status, info.value.code) == (403, "3100")


# ------------------------------------------------------------------------------------------- throttling, 5xx


async def test_throttled_write_is_raised_with_qbos_xml_body_decoded(live: Live) -> None:
    client, wire = counted_client(live)
    await live.add_fault(kind="throttle", operation="create", next_n=1)
    async with client:
        with pytest.raises(QboThrottledError) as info:
            await client.company(live.organization_id).create("Customer", {"DisplayName": "T"}, request_id="th-1")
    assert (info.value.status, info.value.code) == (429, "3001")
    assert wire.statuses == [429]  # a write is not retried in place on 429


async def test_throttled_and_failing_reads_are_retried_in_place(live: Live) -> None:
    client, wire = counted_client(live, throttle_pause_s=0.1)  # no Retry-After from the emulator: short pause
    await live.add_fault(kind="throttle", operation="read", next_n=1)
    async with client:
        company = client.company(live.organization_id)
        customer = await company.create("Customer", {"DisplayName": "Retry Rob"}, request_id="rr-1")
        await live.add_fault(kind="http_error", operation="read", status=503, next_n=1)
        await live.add_fault(kind="http_error", operation="read", status=500, next_n=1)
        read = await company.read("Customer", customer["Id"])
    assert read["DisplayName"] == "Retry Rob"
    assert wire.statuses == [200, 429, 503, 500, 200]


@pytest.mark.parametrize(("status", "body"), [(500, "json"), (502, "html"), (503, "html")])
async def test_server_errors_on_writes_are_raised_as_server_errors(live: Live, status: int, body: str) -> None:
    client, wire = counted_client(live)
    await live.add_fault(kind="http_error", operation="create", status=status, body=body, next_n=1)
    async with client:
        with pytest.raises(QboServerError) as info:
            await client.company(live.organization_id).create("Customer", {"DisplayName": "S"}, request_id="se")
    assert info.value.status == status
    assert info.value.retryable
    assert wire.statuses == [status]


# ------------------------------------------------------------------------------------------- transport


async def test_connection_dropped_after_the_write_is_retried_with_the_same_requestid_and_not_duplicated(
    live: Live,
) -> None:
    client, wire = counted_client(live)
    retries = {"operation": "create", "error": "QboTransportError"}
    before = REGISTRY.get_sample_value("qbsync_qbo_retries_total", retries) or 0.0
    await live.add_fault(kind="drop", operation="create", after_write=True, next_n=1)
    async with client:
        created = await client.company(live.organization_id).create(
            "Customer", {"DisplayName": "Dropped Dora"}, request_id="evt-9-create"
        )
    # The first response was cut off mid-body (headers said 200): the client saw a transport error and retried.
    assert REGISTRY.get_sample_value("qbsync_qbo_retries_total", retries) == before + 1
    assert wire.request_ids == ["evt-9-create", "evt-9-create"]
    assert [r["Id"] for r in await live.rows("Customer") if r["DisplayName"] == "Dropped Dora"] == [created["Id"]]


async def test_timeouts_are_transport_errors_after_bounded_retries(live: Live) -> None:
    client, wire = counted_client(live, read_timeout_s=0.3, read_max_attempts=2)
    await live.add_fault(kind="timeout", operation="read", hold_s=1.0)
    async with client:
        with pytest.raises(QboTransportError) as info:
            await client.company(live.organization_id).read("Customer", "1")
    assert "ReadTimeout" in str(info.value)
    assert wire.statuses == ["ReadTimeout", "ReadTimeout"]


async def test_unreachable_qbo_is_a_transport_error(live: Live) -> None:
    settings = client_settings("http://127.0.0.1:9", read_max_attempts=2)  # nothing listens on port 9
    async with QboClient(settings, live.tokens, jitter=lambda d: 0.0) as client:
        with pytest.raises(QboTransportError) as info:
            await client.company(live.organization_id).count(QboQuery.select("Customer"))
    assert "ConnectError" in str(info.value)
