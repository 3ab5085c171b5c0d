"""Event contracts: money, strictness, registry, codec reasons, JSON Schema drift."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from qbsync import topics
from qbsync.contracts import DecodeError, all_events, decode_envelope, encode_envelope, money
from qbsync.contracts.batchly import DocumentLine, InvoiceCreated, PaymentApplication
from qbsync.contracts.schemas import check_schemas, render_schemas

ROOT = Path(__file__).resolve().parents[2]


def _line(**overrides: Any) -> dict[str, Any]:
    return {
        "line_number": 1,
        "item_id": str(uuid.uuid4()),
        "quantity": "2",
        "unit_price": "1.25",
        "amount": "2.50",
    } | overrides


def _invoice(**payload: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "InvoiceCreated",
        "schema_version": 1,
        "occurred_at": "2026-03-01T08:20:00-08:00",
        "organization_id": str(uuid.uuid4()),
        "entity_id": str(uuid.uuid4()),
        "entity_version": 1,
        "payload": {
            "invoice_id": str(uuid.uuid4()),
            "invoice_number": "INV-000045",
            "customer_id": str(uuid.uuid4()),
            "invoice_date": "2026-03-01",
            "due_date": "2026-03-31",
            "lines": [_line()],
            "subtotal": "2.50",
            "tax_total": "0.22",
            "total": "2.72",
        }
        | payload,
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("12.5", "12.50"), (12.5, "12.50"), (12, "12.00"), ("0.1", "0.10"), (0.1, "0.10"), ("-3.25", "-3.25")],
)
def test_money_accepts_strings_and_numbers_with_at_most_two_places_and_serializes_as_a_string(
    raw: object, expected: str
) -> None:
    line = DocumentLine.model_validate_json(json.dumps(_line(amount=raw)))
    assert line.amount == Decimal(expected)
    assert json.loads(line.model_dump_json())["amount"] == expected


@pytest.mark.parametrize("raw", ["12.345", 12.345, True, "twelve", "NaN", "Infinity", None, [1]])
def test_money_rejects_more_than_two_places_booleans_and_non_numbers(raw: object) -> None:
    with pytest.raises(ValidationError):
        DocumentLine.model_validate_json(json.dumps(_line(amount=raw)))


def test_positive_money_rejects_zero_and_negative_amounts() -> None:
    with pytest.raises(ValidationError):
        PaymentApplication.model_validate_json(json.dumps({"invoice_id": str(uuid.uuid4()), "amount": "0.00"}))
    with pytest.raises(ValidationError):
        PaymentApplication.model_validate_json(json.dumps({"invoice_id": str(uuid.uuid4()), "amount": "-1"}))


def test_money_helper_refuses_to_round() -> None:
    assert money("12.5") == Decimal("12.50")
    with pytest.raises(ValueError, match="more than 2 decimal places"):
        money("1.005")


def test_inbound_events_reject_unknown_fields_naive_times_and_wrong_types() -> None:
    InvoiceCreated.model_validate_json(json.dumps(_invoice()))
    with pytest.raises(ValidationError, match="Extra inputs"):
        InvoiceCreated.model_validate_json(json.dumps(_invoice(discount="1.00")))
    naive = _invoice()
    naive["occurred_at"] = "2026-03-01T08:20:00"
    with pytest.raises(ValidationError, match="timezone"):
        InvoiceCreated.model_validate_json(json.dumps(naive))
    wrong_type = _invoice()
    wrong_type["entity_version"] = "1"  # strict: a string is not an integer
    with pytest.raises(ValidationError):
        InvoiceCreated.model_validate_json(json.dumps(wrong_type))
    with pytest.raises(ValidationError):
        InvoiceCreated.model_validate_json(json.dumps(_invoice(lines=[])))


def test_every_event_is_registered_once_on_a_known_topic_with_a_description() -> None:
    known_topics = {
        *topics.INBOUND_TOPICS,
        topics.QBSYNC_SYNC_RESULTS,
        topics.QBSYNC_CHANGES,
        topics.QBSYNC_CONNECTIONS,
        topics.QBSYNC_PULL_REQUESTS,
        topics.QBSYNC_WEBHOOKS,
    }
    specs = list(all_events())
    assert len({(s.event_type, s.schema_version) for s in specs}) == len(specs)
    for spec in specs:
        assert spec.topic in known_topics, spec
        assert spec.description, f"{spec.event_type} needs a docstring"
        assert spec.event_type == spec.model.EVENT_TYPE
    names = {s.event_type for s in specs}
    assert {"CustomerCreated", "InvoiceCreated", "SyncCompleted", "SyncFailed", "QboConnected", "ItemChanged"} <= names


def test_envelope_round_trips_through_the_codec_unchanged() -> None:
    event = InvoiceCreated.model_validate_json(json.dumps(_invoice()))
    spec, decoded = decode_envelope(encode_envelope(event))
    assert spec.model is InvoiceCreated
    assert decoded == event


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"{nope", "not_json"),
        (b"\xff\xfe", "not_json"),
        (b'"a string"', "not_an_object"),
        (b"{}", "missing_type"),
        (b'{"event_type": "Nope", "schema_version": 1}', "unknown_event_type"),
        (b'{"event_type": "InvoiceCreated", "schema_version": 7}', "unsupported_schema_version"),
        (b'{"event_type": "InvoiceCreated", "schema_version": 1}', "schema_violation"),
    ],
)
def test_decode_errors_carry_a_stable_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_envelope(raw)
    assert info.value.reason == reason
    assert info.value.message


def test_decode_error_messages_name_fields_but_never_echo_values() -> None:
    document = _invoice()
    document["payload"]["customer_id"] = "secret-looking-value-123"
    with pytest.raises(DecodeError) as info:
        decode_envelope(json.dumps(document).encode())
    assert "payload.customer_id" in info.value.message
    assert "secret-looking-value-123" not in info.value.message


def test_checked_in_json_schemas_match_the_models() -> None:
    problems = check_schemas(ROOT / "docs" / "schemas")
    assert not problems, f"run `qbsync schemas export`: {problems}"


def test_a_changed_model_is_detected_as_schema_drift(tmp_path: Path) -> None:
    files = render_schemas()
    for relative, content in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(content)
    assert check_schemas(tmp_path) == []
    target = tmp_path / "batchly.invoices" / "InvoiceCreated.v1.json"
    schema = json.loads(target.read_text())
    schema["properties"].pop("entity_version")
    target.write_text(json.dumps(schema))
    (tmp_path / "batchly.invoices" / "Old.v1.json").write_text("{}")
    assert set(check_schemas(tmp_path)) == {
        "differs: batchly.invoices/InvoiceCreated.v1.json",
        "stale: batchly.invoices/Old.v1.json",
    }


def test_json_schemas_validate_real_events_and_reject_bad_money() -> None:
    import jsonschema

    schema = json.loads(render_schemas()["batchly.invoices/InvoiceCreated.v1.json"])
    jsonschema.validate(_invoice(), schema)
    bad = _invoice()
    bad["payload"]["total"] = "2.725"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_results_are_timestamped_in_utc_aware_datetimes() -> None:
    from qbsync.runtime import results

    event = InvoiceCreated.model_validate_json(json.dumps(_invoice()))
    done = results.completed(
        event,
        service="invoice-sync",
        attempt=1,
        max_attempts=3,
        action="created",
        qbo_id="130",
        qbo_doc_number="INV-000045",
        warnings=[],
        needs_review=False,
        now=datetime.now(UTC),
    )
    again = results.completed(
        event,
        service="invoice-sync",
        attempt=1,
        max_attempts=3,
        action="created",
        qbo_id="130",
        qbo_doc_number="INV-000045",
        warnings=[],
        needs_review=False,
        now=datetime.now(UTC),
    )
    assert done.event_id == again.event_id, "deterministic result ids"
    assert done.causation_id == event.event_id
    assert done.payload.entity_type == "invoice"
