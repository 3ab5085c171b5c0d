"""Disorder helpers for convergence tests, and the end state they must not change."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest

from qbsync.contracts.envelope import AnyEnvelope
from qbsync.simulate import BatchlyWorld, entity_key, latest_snapshot, shuffle_within_entity, with_redeliveries

START = datetime(2025, 5, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def events() -> list[AnyEnvelope]:
    return list(BatchlyWorld(31, start=START).mixed_stream(2, 6_000))


def ids(events: list[AnyEnvelope]) -> list[object]:
    return [event.event_id for event in events]


def test_shuffle_within_entity_is_a_permutation_that_only_swaps_an_entitys_own_slots(
    events: list[AnyEnvelope],
) -> None:
    shuffled = shuffle_within_entity(events, random.Random(1))
    assert sorted(map(str, ids(shuffled))) == sorted(map(str, ids(events)))
    for before, after in zip(events, shuffled, strict=True):
        assert entity_key(before) == entity_key(after)
    assert ids(shuffled) != ids(events)


def test_shuffle_within_entity_puts_some_stale_snapshots_after_newer_ones(events: list[AnyEnvelope]) -> None:
    shuffled = shuffle_within_entity(events, random.Random(2))
    newest_seen: dict[object, int] = {}
    stale = 0
    for event in shuffled:
        key = entity_key(event)
        stale += event.entity_version < newest_seen.get(key, 0)
        newest_seen[key] = max(newest_seen.get(key, 0), event.entity_version)
    assert stale > 0


def test_shuffle_within_entity_is_deterministic_for_a_seeded_rng(events: list[AnyEnvelope]) -> None:
    assert ids(shuffle_within_entity(events, random.Random(3))) == ids(shuffle_within_entity(events, random.Random(3)))


def test_with_redeliveries_repeats_the_asked_share_after_the_original(events: list[AnyEnvelope]) -> None:
    delivered = with_redeliveries(events, 0.1, random.Random(4), window=50)
    assert len(delivered) == len(events) + round(0.1 * len(events))
    counts = Counter(ids(delivered))
    assert set(counts.values()) == {1, 2}
    originals_until: dict[object, int] = {}
    originals: list[AnyEnvelope] = []
    for event in delivered:
        if event.event_id in originals_until:
            # originals delivered between the first delivery and this one: fewer than the window
            assert 0 <= len(originals) - originals_until[event.event_id] < 50
        else:
            originals.append(event)
            originals_until[event.event_id] = len(originals)
    assert ids(originals) == ids(events)


def test_with_redeliveries_rejects_a_share_outside_zero_to_one(events: list[AnyEnvelope]) -> None:
    assert with_redeliveries(events, 0.0, random.Random(5)) == events
    with pytest.raises(ValueError, match="share"):
        with_redeliveries(events, 1.5, random.Random(5))


def test_latest_snapshot_holds_the_highest_version_of_every_entity(events: list[AnyEnvelope]) -> None:
    snapshot = latest_snapshot(events)
    highest: dict[object, int] = defaultdict(int)
    for event in events:
        highest[entity_key(event)] = max(highest[entity_key(event)], event.entity_version)
    assert {key: event.entity_version for key, event in snapshot.items()} == dict(highest)
    deactivated = [e for e in events if e.event_type == "CustomerUpdated" and not e.payload.active]
    assert deactivated
    for event in deactivated:
        final = snapshot[entity_key(event)]
        assert final.entity_version >= event.entity_version


def test_latest_snapshot_is_unchanged_by_reordering_and_redelivery(events: list[AnyEnvelope]) -> None:
    rng = random.Random(6)
    disordered = with_redeliveries(shuffle_within_entity(events, rng), 0.2, rng)
    assert disordered != events
    assert latest_snapshot(disordered) == latest_snapshot(events)
