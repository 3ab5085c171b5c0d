"""Test helpers over an event list: disorder it the way Kafka can, and say what the end state must be.

* ``shuffle_within_entity``: the events of each entity trade places among the positions that entity occupies (a
  stale snapshot may now arrive after a newer one); the list stays a permutation of the input.
* ``with_redeliveries``: some events are delivered again, later (at-least-once consumption after a crash or a
  rebalance), with the same ``event_id``.
* ``latest_snapshot``: per entity, the event with the highest ``entity_version`` — what a convergent consumer must
  end up reflecting in QuickBooks, whatever the order and the duplicates.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import TypeAlias
from uuid import UUID

from qbsync.contracts.envelope import AnyEnvelope

__all__ = ["EntityKey", "entity_key", "latest_snapshot", "shuffle_within_entity", "with_redeliveries"]

#: (entity type as named in the contracts' registry, entity id)
EntityKey: TypeAlias = tuple[str, UUID]


def entity_key(event: AnyEnvelope) -> EntityKey:
    return type(event).ENTITY_TYPE, event.entity_id


def shuffle_within_entity(events: Sequence[AnyEnvelope], rng: random.Random) -> list[AnyEnvelope]:
    positions: dict[EntityKey, list[int]] = {}
    for index, event in enumerate(events):
        positions.setdefault(entity_key(event), []).append(index)
    result = list(events)
    for slots in positions.values():
        if len(slots) > 1:
            members = [events[i] for i in slots]
            rng.shuffle(members)
            for slot, event in zip(slots, members, strict=True):
                result[slot] = event
    return result


def with_redeliveries(
    events: Sequence[AnyEnvelope], share: float, rng: random.Random, *, window: int = 100
) -> list[AnyEnvelope]:
    """Deliver ``round(share x len(events))`` randomly chosen events a second time, each at most ``window``
    positions after its first delivery. The originals keep their relative order."""
    if not 0 <= share <= 1:
        raise ValueError("share must be within [0, 1]")
    if window < 1:
        raise ValueError("window must be >= 1")
    count = len(events)
    again: dict[int, list[AnyEnvelope]] = {}
    for index in sorted(rng.sample(range(count), k=round(share * count))):
        # the copy is delivered just before the event at `target` (or at the end when target == count)
        target = rng.randint(index + 1, min(count, index + window))
        again.setdefault(target, []).append(events[index])
    result: list[AnyEnvelope] = []
    for index, event in enumerate(events):
        result.extend(again.get(index, ()))
        result.append(event)
    result.extend(again.get(count, ()))
    return result


def latest_snapshot(events: Iterable[AnyEnvelope]) -> dict[EntityKey, AnyEnvelope]:
    """The newest event per entity (highest ``entity_version``; the first seen wins a tie, e.g. a redelivery)."""
    latest: dict[EntityKey, AnyEnvelope] = {}
    for event in events:
        key = entity_key(event)
        current = latest.get(key)
        if current is None or event.entity_version > current.entity_version:
            latest[key] = event
    return latest
