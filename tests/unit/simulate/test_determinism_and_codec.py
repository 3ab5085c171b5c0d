"""Same seed, same events; every generated event is a valid contract that survives the codec unchanged."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pytest

from qbsync.contracts import decode_envelope, encode_envelope
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.simulate import MIX_KINDS, BatchlyWorld, CustomerCase, WorldConfig

START = datetime(2025, 3, 3, 6, 30, tzinfo=UTC)


def scenario(seed: int, *, config: WorldConfig | None = None) -> list[AnyEnvelope]:
    """Every kind of event, the workflows, hard and invalid customers, a 250-line and a rounding-sensitive invoice."""
    world = BatchlyWorld(seed, start=START, config=config)
    org_event = world.add_organization(timezone="America/New_York")
    org = org_event.entity_id
    events: list[AnyEnvelope] = [org_event, world.update_organization(org, customer_update_mode="nightly")]
    events += [world.create_customer(org, case=case) for case in CustomerCase]
    events += world.new_customer_workflow(org)
    events += world.daily_workflow(org, date(2025, 3, 4))
    events.append(world.create_item(org))
    big = world.create_invoice(org, line_count=250)
    sensitive = world.create_invoice(org, rounding_sensitive=True)
    paid = world.create_invoice(org, line_count=3)
    events += [big, sensitive, paid, world.void_invoice(sensitive.entity_id)]
    events.append(world.record_payment(paid.entity_id, amount=paid.payload.total))
    events.append(credit := world.create_credit_memo(paid.entity_id, full=True))
    events.append(world.issue_refund(credit_memo_id=credit.entity_id))
    events.append(world.issue_refund(invoice_id=paid.entity_id))
    events.append(world.update_customer(events[2].entity_id, change="deactivate"))
    events += world.mixed_stream([org], 3_000)
    return events


def test_same_seed_produces_byte_identical_events() -> None:
    first = [event.model_dump_json() for event in scenario(11)]
    second = [event.model_dump_json() for event in scenario(11)]
    assert first == second


def test_different_seeds_produce_different_events() -> None:
    first = [event.model_dump_json() for event in scenario(11)]
    other = [event.model_dump_json() for event in scenario(12)]
    assert first != other


def test_same_seed_mixed_stream_with_new_organizations_is_identical() -> None:
    def run() -> list[str]:
        world = BatchlyWorld(5, start=START)
        return [event.model_dump_json() for event in world.mixed_stream(4, 2_000)]

    assert run() == run()


def test_every_generated_event_round_trips_the_codec() -> None:
    events = scenario(21, config=WorldConfig(hard_case_share=0.3, invalid_share=0.2))
    assert {event.event_type for event in events} >= set(MIX_KINDS)
    for event in events:
        raw = encode_envelope(event)
        spec, decoded = decode_envelope(raw)
        assert spec.model is type(event)
        assert decoded == event
        assert encode_envelope(decoded) == raw


def test_event_ids_are_unique_and_clock_never_runs_backwards_in_a_stream() -> None:
    world = BatchlyWorld(3, start=START)
    events = list(world.mixed_stream(2, 5_000))
    assert len({event.event_id for event in events}) == len(events)
    times = [event.occurred_at for event in events]
    assert times == sorted(times)
    assert all(event.occurred_at.utcoffset() is not None for event in events)
    assert world.now == times[-1]


def test_world_refuses_a_naive_start() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        BatchlyWorld(1, start=datetime(2025, 1, 1))


def test_twenty_thousand_event_stream_covers_every_event_kind() -> None:
    # Speed sanity: the suite generates 20k events here; a slow generator shows up as a slow test, not a flaky one.
    world = BatchlyWorld(8, start=START)
    counts = Counter(event.event_type for event in world.mixed_stream(3, 20_000))
    assert set(counts) == set(MIX_KINDS)
    assert counts["InvoiceCreated"] > counts["InvoiceVoided"]
