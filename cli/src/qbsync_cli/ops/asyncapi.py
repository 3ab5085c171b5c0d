"""The AsyncAPI 3.0 document of every qbsync topic and message, generated from the code and checked in.

Sources of truth, all in ``qbsync``: the contract registry (each event's type, version, topic, direction, entity type
and description), ``qbsync.topics`` (every topic, who consumes it, the retry tiers and dead-letter topics) and the
JSON Schemas in ``docs/schemas`` (the payloads; referenced, not copied, so there is one schema per event).

``qbsync asyncapi export`` writes ``docs/asyncapi.json``; ``qbsync asyncapi check`` fails when it drifted from the
code (a test runs it, like the JSON Schema check).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from qbsync.contracts.registry import EventSpec, all_events
from qbsync.runtime import headers as h
from qbsync.settings import SERVICE_NAMES, RuntimeSettings
from qbsync.topics import dead_letter_topic, retry_topic, service_topics

__all__ = ["ASYNCAPI_PATH", "build_asyncapi", "check_asyncapi", "render_asyncapi"]

ASYNCAPI_PATH = Path("docs/asyncapi.json")
_SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"

_TOPIC_NOTES = {
    "batchly.": "Published by Batchly; keyed by organization_id.",
    "qbsync.sync-results": "Every step and the terminal outcome of each inbound event (Batchly shows the badges).",
    "qbsync.changes": "What changed in QuickBooks, for Batchly to apply.",
    "qbsync.connections": "QuickBooks connection changes from token-manager; sync services park and resume on them.",
    "qbsync.pull-requests": "Pull work for pull-sync (scheduler, webhooks, manual commands).",
    "qbsync.webhooks": "Verified QuickBooks webhook notifications, queued before Intuit gets its 200.",
}


def _channel_id(topic: str) -> str:
    return topic.replace(".", "-").replace("{", "").replace("}", "")


def _message_id(spec: EventSpec) -> str:
    return f"{spec.event_type}.v{spec.schema_version}"


def _headers_schema(*, ladder: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        h.CONTENT_TYPE: {"type": "string", "const": h.JSON},
        h.EVENT_TYPE: {"type": "string", "description": "Equal to the envelope's event_type."},
    }
    if ladder:
        for name, text in (
            (h.ORIGINAL_TOPIC, "topic the record first arrived on"),
            (h.ORIGINAL_PARTITION, "its partition"),
            (h.ORIGINAL_OFFSET, "its offset"),
            (h.ORIGINAL_TIMESTAMP, "its timestamp (ms)"),
            (h.ATTEMPT, "attempt this record carries (retry) or the last attempt made (dead letter)"),
            (h.FIRST_FAILURE_AT, "ISO-8601 UTC"),
            (h.DUE_AT, "ISO-8601 UTC; a tier consumer never handles the record earlier"),
            (h.FAILED_AT, "ISO-8601 UTC"),
            (h.ERROR_CLASS, "transient | dependency | internal | auth_lost | permanent | malformed"),
            (h.ERROR_CODE, "stable code of the failure"),
            (h.ERROR_MESSAGE, "why"),
            (h.EXCEPTION_TYPE, "exception class"),
            (h.CONSUMER_GROUP, "the group that failed it"),
            (h.SERVICE, "the service that failed it"),
            (h.RESUMED_FROM_PARK, "true on records released after a reconnect"),
            ("qbsync-replayed-at", "ISO-8601 UTC; set by `qbsync dlq replay` / `qbsync retry`"),
            ("qbsync-replayed-from", "topic:partition:offset the replayed record was read from"),
        ):
            properties[name] = {"type": "string", "description": text}
    return {
        "type": "object",
        "description": "Kafka record headers; every value is UTF-8 text.",
        "properties": properties,
        "required": [h.EVENT_TYPE],
    }


def _message(spec: EventSpec) -> dict[str, Any]:
    return {
        "name": spec.event_type,
        "title": f"{spec.event_type} v{spec.schema_version}",
        "summary": spec.description,
        "contentType": h.JSON,
        "headers": {"$ref": "#/components/schemas/RecordHeaders"},
        "payload": {
            "schemaFormat": _SCHEMA_FORMAT,
            "schema": {"$ref": f"schemas/{spec.topic}/{spec.event_type}.v{spec.schema_version}.json"},
        },
        "bindings": {"kafka": {"key": {"type": "string", "format": "uuid", "description": "organization_id"}}},
        "x-qbsync-direction": spec.direction,
        "x-qbsync-entity-type": spec.entity_type,
    }


def _consumers() -> dict[str, list[str]]:
    consumers: dict[str, list[str]] = defaultdict(list)
    for service in SERVICE_NAMES:
        for topic in service_topics(service):
            consumers[topic].append(service)
    return consumers


def build_asyncapi() -> dict[str, Any]:
    specs = list(all_events())
    by_topic: dict[str, list[EventSpec]] = defaultdict(list)
    for spec in specs:
        by_topic[spec.topic].append(spec)
    consumers = _consumers()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic, topic_specs in sorted(by_topic.items()):
        refs = {_message_id(s): {"$ref": f"#/components/messages/{_message_id(s)}"} for s in topic_specs}
        note = next((text for prefix, text in _TOPIC_NOTES.items() if topic.startswith(prefix)), "")
        readers = ", ".join(consumers.get(topic, [])) or "Batchly"
        channels[_channel_id(topic)] = {
            "address": topic,
            "title": topic,
            "description": f"{note} Consumed by: {readers}.".strip(),
            "messages": refs,
        }
        direction = topic_specs[0].direction
        action = "receive" if direction == "inbound" else "send"
        operations[f"{action}-{_channel_id(topic)}"] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{_channel_id(topic)}"},
            "summary": f"qbsync {'consumes' if action == 'receive' else 'publishes'} {topic}.",
            "messages": [{"$ref": f"#/channels/{_channel_id(topic)}/messages/{m}"} for m in refs],
        }
    channels.update(_ladder_channels(by_topic))
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "qbsync",
            "version": "1",
            "description": (
                "Batchly ↔ QuickBooks Online sync over Kafka. Every message is an envelope (docs/contracts.md); "
                "every record is keyed by organization_id. Generated by `qbsync asyncapi export` — do not edit."
            ),
        },
        "defaultContentType": h.JSON,
        "servers": {
            "embedded": {"host": "127.0.0.1:19092", "protocol": "kafka", "description": "`qbsync up` (tansu)"},
            "compose": {"host": "kafka:9092", "protocol": "kafka", "description": "docker-compose (Apache Kafka)"},
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {
                "RecordHeaders": _headers_schema(ladder=False),
                "LadderHeaders": _headers_schema(ladder=True),
            },
            "messages": {_message_id(s): _message(s) for s in specs},
        },
    }


def _ladder_channels(by_topic: dict[str, list[EventSpec]]) -> dict[str, Any]:
    """Each service's retry tiers and dead-letter topic carry the records of the topics it consumes, unchanged."""
    channels: dict[str, Any] = {}
    tiers = len(RuntimeSettings().retry_delays_seconds)
    for service in SERVICE_NAMES:
        refs = {
            _message_id(s): {"$ref": f"#/components/messages/{_message_id(s)}"}
            for topic in service_topics(service)
            for s in by_topic.get(topic, [])
        }
        addresses = [(retry_topic(service, t), f"retry tier {t}") for t in range(1, tiers + 1)]
        addresses.append((dead_letter_topic(service), "dead letters (replay: `qbsync dlq replay`)"))
        for address, what in addresses:
            channels[_channel_id(address)] = {
                "address": address,
                "title": address,
                "description": (
                    f"{service}'s {what}: its own records with the same key and value plus qbsync-* headers "
                    "(components/schemas/LadderHeaders)."
                ),
                "messages": refs,
            }
    return channels


def render_asyncapi() -> str:
    return json.dumps(build_asyncapi(), indent=2, ensure_ascii=False) + "\n"


def check_asyncapi(path: Path = ASYNCAPI_PATH) -> list[str]:
    if not path.exists():
        return [f"missing: {path}"]
    return [] if path.read_text(encoding="utf-8") == render_asyncapi() else [f"differs: {path}"]
