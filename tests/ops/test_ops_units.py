"""Operator tooling without a broker: replay planning, filters, hints, the doctor's checks, generated documents,
and clear errors for bad arguments."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qbsync.contracts.registry import all_events
from qbsync.runtime import headers as h
from qbsync.settings import SERVICE_NAMES
from qbsync.topics import all_topic_specs, dead_letter_topic, retry_topic
from qbsync_cli.main import app
from qbsync_cli.ops.asyncapi import ASYNCAPI_PATH, build_asyncapi, check_asyncapi
from qbsync_cli.ops.dashboard import DASHBOARD_PATH, build_dashboard, check_dashboard, panel_queries
from qbsync_cli.ops.deadletters import REPLAYED_AT, DeadLetter, Filters, plan_replay, retry_record
from qbsync_cli.ops.doctor import CompanyFacts, diagnose
from qbsync_cli.ops.hints import hint_for
from tests.ops.test_alert_rules import _anchor

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def letter(
    offset: int, *, partition: int = 0, error_class: str = "transient", event_id: str | None = None, **extra: str
) -> DeadLetter:
    headers = {
        h.EVENT_TYPE: "CustomerCreated",
        h.ERROR_CLASS: error_class,
        h.ERROR_CODE: extra.pop("code", "timeout"),
        h.FAILED_AT: h.format_time(NOW - timedelta(minutes=60 - offset)),
        h.ORIGINAL_TOPIC: "batchly.customers",
        h.ORIGINAL_PARTITION: "2",
        h.ORIGINAL_OFFSET: str(100 + offset),
        h.ATTEMPT: "3",
        "traceparent": "00-abc-def-01",
    }
    value = json.dumps({"event_id": event_id or str(uuid.uuid4()), "event_type": "CustomerCreated"}).encode()
    org = extra.pop("org", "8ed72d0d-568c-4c2b-b40a-7798d6f18134")
    return DeadLetter("p.qbsync.customer-sync.dlt", partition, offset, 0, org.encode(), value, headers)


# ---- replay planning -------------------------------------------------------------------------------------------------
def test_replay_plan_moves_the_cursor_over_replayed_records_and_stops_at_one_left_out() -> None:
    records = [letter(0), letter(1, error_class="permanent"), letter(2), letter(0, partition=1)]
    plan = plan_replay("customer-sync", records, {}, Filters(error_classes=("transient",)), None)
    assert [(r.partition, r.offset) for r in plan.to_replay] == [(0, 0), (0, 2), (1, 0)]
    assert plan.skipped == 1
    assert plan.commits == {0: 1, 1: 1}, "partition 0 stops before the permanent record a filter left out"


def test_replay_plan_replays_only_the_newest_copy_of_an_event_and_skips_handled_ones() -> None:
    again = str(uuid.uuid4())
    done = str(uuid.uuid4())
    records = [letter(0, event_id=again), letter(1, event_id=done), letter(2, event_id=again)]
    plan = plan_replay("customer-sync", records, {}, Filters(), None, frozenset({done}))
    assert [r.offset for r in plan.to_replay] == [2]
    assert [r.offset for r in plan.superseded] == [0]
    assert [r.offset for r in plan.handled] == [1]
    assert plan.commits == {0: 3}


def test_replay_plan_honours_the_limit_and_leaves_malformed_records_unless_asked() -> None:
    records = [letter(0, error_class="malformed"), letter(1), letter(2), letter(3)]
    plan = plan_replay("customer-sync", records, {}, Filters(), 2)
    assert [r.offset for r in plan.to_replay] == [1, 2]
    assert plan.commits == {}, "the malformed record at the head holds the cursor"
    asked = plan_replay("customer-sync", records, {}, Filters(error_classes=("malformed",)), None)
    assert [r.offset for r in asked.to_replay] == [0]


def test_filters_by_organization_event_type_and_failure_time() -> None:
    record = letter(30)  # failed 30 minutes before NOW
    assert Filters(since=NOW - timedelta(hours=1)).matches(record)
    assert not Filters(since=NOW - timedelta(minutes=10)).matches(record)
    assert not Filters(until=NOW - timedelta(hours=1)).matches(record)
    assert Filters(organization_id=uuid.UUID("8ed72d0d-568c-4c2b-b40a-7798d6f18134")).matches(record)
    assert not Filters(organization_id=uuid.uuid4()).matches(record)
    assert not Filters(event_types=("InvoiceCreated",)).matches(record)
    assert not Filters(error_codes=("6240",)).matches(record)


def test_a_replayed_record_keeps_key_value_and_headers_and_starts_a_fresh_ladder() -> None:
    record = letter(5)
    replayed = retry_record(record, service="customer-sync", source="dlt:0:5", now=NOW)
    assert replayed.topic == retry_topic("customer-sync", 1)
    assert replayed.key == record.key
    assert replayed.value == record.value
    assert replayed.headers["traceparent"] == "00-abc-def-01", "the producer's headers are kept"
    assert replayed.headers[h.ORIGINAL_OFFSET] == "105"
    assert replayed.headers[h.ATTEMPT] == "1"
    assert replayed.headers[h.DUE_AT] == h.format_time(NOW)
    assert replayed.headers[REPLAYED_AT] == h.format_time(NOW)
    context = h.RetryContext.from_headers(replayed.headers)
    assert context is not None
    assert context.original_topic == "batchly.customers"


# ---- hints and doctor ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error_class", "code", "section"),
    [
        ("permanent", "6240", "customer-already-exists-in-qb"),
        ("permanent", "item_not_found", "item-not-found-in-qb"),
        ("permanent", "6140", "invoice-number-conflict"),
        ("transient", "timeout", "network-timeout"),
        ("auth_lost", "auth_lost", "qb-authentication-expired"),
        ("dependency", "whatever", "invoice-sync-failed"),
        ("malformed", "schema_violation", "malformed-events"),
    ],
)
def test_each_of_the_seeds_common_errors_has_a_hint_and_a_documented_section(
    error_class: str, code: str, section: str
) -> None:
    hint = hint_for(error_class, code)
    assert hint.section == section
    headings = [
        line for line in (ROOT / "docs" / "troubleshooting.md").read_text().splitlines() if line.startswith("#")
    ]
    anchors = {_anchor(line) for line in headings}
    assert section in anchors
    assert hint_for(error_class, code, "handler says so").text == "handler says so"


def _facts(**overrides: Any) -> CompanyFacts:
    base: dict[str, Any] = {
        "company_name": "Co",
        "preferences": {
            "SalesFormsPrefs": {"CustomTxnNumbers": True},
            "TaxPrefs": {"UsingSalesTax": True, "PartnerTaxEnabled": True},
        },
        "accounts": [{"Id": "1", "AccountType": "Income", "Active": True}, {"Id": "2", "AccountType": "Bank"}],
        "items": [{"Id": "7", "Name": "Widget", "Type": "Service", "IncomeAccountRef": {"value": "1"}}],
        "tax_rates": [{"Id": "3", "Active": True}],
    }
    return CompanyFacts(**(base | overrides))


def test_doctor_finds_a_company_set_up_for_qbsync_healthy() -> None:
    assert {f.severity for f in diagnose(_facts())} == {"ok"}


def test_doctor_flags_custom_numbers_off_missing_income_accounts_and_sales_tax_gaps() -> None:
    findings = diagnose(
        _facts(
            preferences={"SalesFormsPrefs": {"CustomTxnNumbers": False}, "TaxPrefs": {"UsingSalesTax": False}},
            items=[
                {"Id": "7", "Name": "Widget", "Type": "Service", "IncomeAccountRef": {"value": "1"}},
                {"Id": "8", "Name": "Gadget", "Type": "Inventory", "IncomeAccountRef": {"value": "2"}},
                {"Id": "9", "Name": "Bundle", "Type": "Group"},
            ],
        )
    )
    by_check = {f.check: f for f in findings}
    assert by_check["custom transaction numbers"].severity == "error"
    assert by_check["sales tax"].severity == "warning"
    assert by_check["income accounts"].severity == "error"
    assert "Gadget" in by_check["income accounts"].message
    assert "Widget" not in by_check["income accounts"].message
    no_income = diagnose(_facts(accounts=[{"Id": "2", "AccountType": "Bank"}]))
    assert any(f.severity == "error" and f.check == "income accounts" for f in no_income)
    no_rates = diagnose(_facts(tax_rates=[]))
    assert any(f.severity == "warning" and "no active tax rate" in f.message for f in no_rates)


# ---- generated documents ---------------------------------------------------------------------------------------------
def test_checked_in_dashboard_and_asyncapi_match_the_code() -> None:
    assert check_dashboard(ROOT / DASHBOARD_PATH) == []
    assert check_asyncapi(ROOT / ASYNCAPI_PATH) == []


def test_dashboard_shows_the_seeds_sync_dashboard_without_a_hard_coded_entity_list() -> None:
    dashboard = build_dashboard()
    titles = {panel["title"] for panel in dashboard["panels"]}
    for wanted in (
        "Connected organizations",
        "Last sync per entity type",
        "Synced per entity type",
        "Failed per entity type",
        "Pending syncs",
        "Failed syncs (last 7 days)",
        "Sync latency (event to outcome)",
        "Retries by tier",
        "Dead letters by error class",
        "Consumer lag",
    ):
        assert wanted in titles
    for title, expr in panel_queries(dashboard):
        assert "entity_type=" not in expr, f"{title} names an entity type"
        assert "organization" not in expr
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_asyncapi_names_every_topic_and_message_and_its_references_resolve() -> None:
    document = build_asyncapi()
    addresses = {channel["address"] for channel in document["channels"].values()}
    specs = all_topic_specs(SERVICE_NAMES, tiers=2, partitions=1, retry_partitions=1)
    assert {spec.name for spec in specs} <= addresses
    messages = document["components"]["messages"]
    for spec in all_events():
        message = messages[f"{spec.event_type}.v{spec.schema_version}"]
        schema_ref = message["payload"]["schema"]["$ref"]
        assert (ROOT / "docs" / schema_ref).exists(), schema_ref
    for operation in document["operations"].values():
        channel_id = operation["channel"]["$ref"].rsplit("/", 1)[1]
        for ref in operation["messages"]:
            assert ref["$ref"].rsplit("/", 1)[1] in document["channels"][channel_id]["messages"]
    dlt = next(c for c in document["channels"].values() if c["address"] == dead_letter_topic("invoice-sync"))
    assert "InvoiceCreated.v1" in dlt["messages"]


# ---- bad arguments ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dlq", "list", "--service", "nope"], "unknown service 'nope'"),
        (["dlq", "replay", "--service", "customer-sync", "--error-class", "flaky"], "unknown error class flaky"),
        (["failed", "--since", "yesterday"], "neither a duration"),
        (["history", "--service", "billing"], "unknown service 'billing'"),
        (["retry", "not-a-uuid"], "should be a valid UUID"),
        (["sync", "orders", str(uuid.uuid4())], "orders"),
        (["dlq", "list", "--service", "customer-sync", "--since", "1h", "--until", "2h"], "--since is after --until"),
    ],
)
def test_bad_arguments_get_a_clear_error(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert message in result.output
