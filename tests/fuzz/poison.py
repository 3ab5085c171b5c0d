"""Hypothesis strategies for poison records: every one is bad by construction, so every one must be dead-lettered.

A record is drawn as one of: random bytes (or none at all), JSON that is not an object, a valid envelope with one
field removed or replaced by an adversarial value (unicode, control characters, huge numbers and strings, deep
nesting), a valid envelope with wrong headers (missing, another event type, a foreign content type, bytes that are not
UTF-8), a valid envelope keyed by another organization, or a valid envelope on a topic that does not carry its type.
The valid envelopes come from ``qbsync.simulate`` for one organization; the strategy returns the record and which
service's dead-letter topic it must land in.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Final

from hypothesis import strategies as st

from qbsync.contracts.envelope import AnyEnvelope
from qbsync.runtime.kafka import record_for
from qbsync.topics import BATCHLY_CUSTOMERS, BATCHLY_INVOICES, BATCHLY_ITEMS, BATCHLY_ORDERS, BATCHLY_PAYMENTS

__all__ = ["CONSUMER_OF", "Poison", "poison_records"]

#: Topic -> the one service that consumes it (topics several services read are left out: one dead letter each).
CONSUMER_OF: Final[dict[str, str]] = {
    BATCHLY_CUSTOMERS: "customer-sync",
    BATCHLY_INVOICES: "invoice-sync",
    BATCHLY_PAYMENTS: "invoice-sync",
    BATCHLY_ORDERS: "invoice-sync",
    BATCHLY_ITEMS: "pull-sync",
}
_REQUIRED: Final = ("event_id", "event_type", "schema_version", "occurred_at", "organization_id", "payload")

adversarial_text = st.one_of(
    st.text(min_size=0, max_size=40),
    st.text(alphabet=st.characters(codec="utf-8", categories=("Cc", "Cf", "Zl", "Zp", "So")), max_size=40),
    st.sampled_from(["'; DROP TABLE sync_ledger; --", "\x00", "\u202e\u0000evil", "A" * 70_000, "{{7*7}}", "../../"]),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    adversarial_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(adversarial_text, inner, max_size=4),
    max_leaves=8,
)


@dataclass(frozen=True)
class Poison:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    kind: str

    @property
    def service(self) -> str:
        return CONSUMER_OF[self.topic]


def poison_records(valid: list[AnyEnvelope]) -> st.SearchStrategy[Poison]:
    """Bad records derived from ``valid`` (envelopes whose topics are in ``CONSUMER_OF``)."""
    base = st.sampled_from(valid)
    topics = st.sampled_from(sorted(CONSUMER_OF))
    return st.one_of(
        st.builds(_raw_bytes, topics, st.one_of(st.none(), st.binary(max_size=300))),
        st.builds(_not_an_object, topics, json_values.filter(lambda v: not isinstance(v, dict))),
        st.builds(_missing_field, base, st.sampled_from(_REQUIRED)),
        st.builds(_bad_value, base, st.sampled_from(_REQUIRED), json_values),
        st.builds(_deeply_nested, base, st.integers(min_value=2_000, max_value=200_000)),
        st.builds(_oversized_payload, base),
        st.builds(_bad_headers, base, st.sampled_from(["none", "other_type", "content_type", "not_utf8"])),
        st.builds(_wrong_key, base, st.one_of(st.none(), st.binary(max_size=40), st.uuids().map(lambda u: u.bytes))),
        st.builds(_wrong_topic, base),
    )


# ---- the kinds -----------------------------------------------------------------------------------------------------
def _headers(envelope: AnyEnvelope) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in record_for(envelope).headers.items()]


def _document(envelope: AnyEnvelope) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(record_for(envelope).value)
    return document


def _of(envelope: AnyEnvelope, value: bytes | None, kind: str, **changes: Any) -> Poison:
    record = record_for(envelope)
    fields: dict[str, Any] = {"topic": record.topic, "key": record.key, "value": value, "headers": _headers(envelope)}
    return Poison(**(fields | changes), kind=kind)


def _raw_bytes(topic: str, value: bytes | None) -> Poison:
    if value is not None:
        value = b"\xff" + value  # never valid UTF-8 JSON
    return Poison(topic, str(uuid.uuid4()).encode(), value, [("content-type", b"application/json")], "raw_bytes")


def _not_an_object(topic: str, value: Any) -> Poison:
    return Poison(topic, str(uuid.uuid4()).encode(), json.dumps(value).encode(), [], "not_an_object")


def _missing_field(envelope: AnyEnvelope, name: str) -> Poison:
    document = _document(envelope)
    del document[name]
    return _of(envelope, json.dumps(document).encode(), f"missing_{name}")


def _bad_value(envelope: AnyEnvelope, name: str, value: Any) -> Poison:
    document = _document(envelope)
    document[name] = _never_valid(name, value)
    return _of(envelope, json.dumps(document).encode(), f"bad_{name}")


def _never_valid(name: str, value: Any) -> Any:
    """``value`` made certainly invalid for field ``name`` (hypothesis might draw a valid one)."""
    if name == "payload":
        return value if not isinstance(value, dict) else {**value, "\u0000unexpected": value}
    if name == "schema_version":
        return 999 if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(value, str):
        return "\u0000" + value  # not a UUID, not a known event type, not a time
    return value if value is not None else []


def _deeply_nested(envelope: AnyEnvelope, depth: int) -> Poison:
    document = _document(envelope)
    nested = ("[" * depth + "]" * depth).encode()
    value = json.dumps(document).encode()[:-1] + b', "extra": ' + nested + b"}"
    return _of(envelope, value, "deeply_nested")


def _oversized_payload(envelope: AnyEnvelope) -> Poison:
    document = _document(envelope)
    document["payload"] = {**document["payload"], "notes": "\u00e9" * 300_000}
    return _of(envelope, json.dumps(document, ensure_ascii=False).encode(), "oversized_field")


def _bad_headers(envelope: AnyEnvelope, how: str) -> Poison:
    value = record_for(envelope).value
    headers: list[tuple[str, bytes]]
    if how == "none":
        headers = []
    elif how == "other_type":
        headers = [("content-type", b"application/json"), ("event-type", b"InvoiceVoided")]
    elif how == "content_type":
        headers = [("content-type", b"text/html"), ("event-type", envelope.event_type.encode())]
    else:
        headers = [("content-type", b"application/json"), ("event-type", b"\xff\xfe" + envelope.event_type.encode())]
    if how == "none":  # without headers the envelope alone must still be refused: make its type unknown too
        document = _document(envelope)
        document["event_type"] = document["event_type"] + "\u200b"
        value = json.dumps(document).encode()
    return _of(envelope, value, f"headers_{how}", headers=headers)


def _wrong_key(envelope: AnyEnvelope, key: bytes | None) -> Poison:
    if key == str(envelope.organization_id).encode():
        key = None
    return _of(envelope, record_for(envelope).value, "wrong_key", key=key)


def _wrong_topic(envelope: AnyEnvelope) -> Poison:
    own = record_for(envelope).topic
    other = next(t for t in sorted(CONSUMER_OF) if CONSUMER_OF[t] != CONSUMER_OF[own])
    return _of(envelope, record_for(envelope).value, "wrong_topic", topic=other)
