"""Registry of every event contract: (event_type, schema_version) -> model, topic, direction, entity type.

Concrete events are declared with ``@event(...)``; the decorator reads the ``Literal`` values of the class's
``event_type`` and ``schema_version`` fields so the name is written once.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, TypeVar

from qbsync.contracts.envelope import AnyEnvelope

__all__ = ["Direction", "EventSpec", "all_events", "event", "lookup", "lookup_type"]

Direction = Literal["inbound", "outbound", "internal"]
E = TypeVar("E", bound=type[AnyEnvelope])


@dataclass(frozen=True, slots=True)
class EventSpec:
    event_type: str
    schema_version: int
    model: type[AnyEnvelope]
    topic: str
    direction: Direction
    entity_type: str
    description: str


_REGISTRY: dict[tuple[str, int], EventSpec] = {}


def _literal_value(model: type[AnyEnvelope], field: str) -> object:
    annotation = model.model_fields[field].annotation
    if typing.get_origin(annotation) is not Literal:
        raise TypeError(f"{model.__name__}.{field} must be a Literal[...] to be registered")
    (value,) = typing.get_args(annotation)
    return value


def event(*, topic: str, entity_type: str, direction: Direction = "inbound") -> Callable[[E], E]:
    """Register a concrete event class (``event_type``/``schema_version`` must be ``Literal`` fields)."""

    def register(model: E) -> E:
        event_type = _literal_value(model, "event_type")
        version = _literal_value(model, "schema_version")
        if not isinstance(event_type, str) or not isinstance(version, int):
            raise TypeError(f"{model.__name__}: event_type must be a str and schema_version an int literal")
        key = (event_type, version)
        if key in _REGISTRY and _REGISTRY[key].model is not model:
            raise ValueError(f"{event_type} v{version} is registered twice")
        model.EVENT_TYPE = event_type
        model.SCHEMA_VERSION = version
        model.TOPIC = topic
        model.DIRECTION = direction
        model.ENTITY_TYPE = entity_type
        doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        _REGISTRY[key] = EventSpec(event_type, version, model, topic, direction, entity_type, doc)
        return model

    return register


def lookup(event_type: str, schema_version: int) -> EventSpec | None:
    return _REGISTRY.get((event_type, schema_version))


def lookup_type(event_type: str) -> list[EventSpec]:
    """Every registered version of ``event_type`` (empty when the type is unknown)."""
    return [spec for (name, _), spec in _REGISTRY.items() if name == event_type]


def all_events() -> Iterator[EventSpec]:
    """Every registered event, in a stable order (topic, then name, then version)."""
    _ensure_loaded()
    yield from sorted(_REGISTRY.values(), key=lambda s: (s.topic, s.event_type, s.schema_version))


def _ensure_loaded() -> None:
    # Importing the modules runs their @event decorators.
    from qbsync.contracts import batchly, outbound  # noqa: F401
