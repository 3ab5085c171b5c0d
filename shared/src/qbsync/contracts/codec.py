"""Bytes <-> envelopes, with a clear, stable reason for every way a record can be malformed.

Decoding peeks at ``event_type`` and ``schema_version`` first, so an unknown type or version is reported as such
rather than as a wall of union-validation errors. Error texts name fields and rules, never the offending values:
they travel in dead-letter headers and logs, and values may be personal data.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from qbsync.contracts.envelope import AnyEnvelope
from qbsync.contracts.registry import EventSpec, lookup, lookup_type

__all__ = [
    "DecodeError",
    "MalformedReason",
    "decode_envelope",
    "encode_envelope",
    "summarize_validation_error",
]

MalformedReason = Literal[
    "not_json",
    "not_an_object",
    "missing_type",
    "unknown_event_type",
    "unsupported_schema_version",
    "schema_violation",
    "oversized",
    "empty",
    "bad_headers",
    "header_mismatch",
    "wrong_topic",
]


class DecodeError(Exception):
    """A record that can never be processed; it goes to the dead-letter topic with ``reason`` and the message."""

    def __init__(self, reason: MalformedReason, message: str) -> None:
        super().__init__(message)
        self.reason: MalformedReason = reason
        self.message = message


class _Head(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    event_type: str
    schema_version: int


def decode_envelope(raw: bytes) -> tuple[EventSpec, AnyEnvelope]:
    """Parse and validate one record value. Raises ``DecodeError`` with a stable reason."""
    if not raw:
        raise DecodeError("empty", "record value is empty (tombstone or null value)")
    try:
        head = _Head.model_validate_json(raw)
    except ValidationError as exc:
        kinds = {err["type"] for err in exc.errors()}
        if "json_invalid" in kinds:
            raise DecodeError("not_json", f"record value is not valid JSON: {_json_position(raw)}") from None
        if "model_type" in kinds:
            raise DecodeError("not_an_object", "record value must be a JSON object (an event envelope)") from None
        raise DecodeError(
            "missing_type",
            "envelope needs a string event_type and an integer schema_version: " + summarize_validation_error(exc),
        ) from None
    spec = lookup(head.event_type, head.schema_version)
    if spec is None:
        known = sorted(s.schema_version for s in lookup_type(head.event_type))
        if known:
            raise DecodeError(
                "unsupported_schema_version",
                f"{head.event_type} schema_version {head.schema_version} is not supported (known: {known})",
            )
        raise DecodeError("unknown_event_type", f"unknown event_type {head.event_type!r}")
    try:
        envelope = spec.model.model_validate_json(raw)
    except ValidationError as exc:
        raise DecodeError(
            "schema_violation", f"{spec.event_type} v{spec.schema_version}: {summarize_validation_error(exc)}"
        ) from None
    return spec, envelope


def encode_envelope(envelope: AnyEnvelope) -> bytes:
    return envelope.model_dump_json().encode("utf-8")


def summarize_validation_error(exc: ValidationError, *, limit: int = 5) -> str:
    """``"payload.lines.0.amount: Decimal input should have no more than 2 decimal places; ..."`` (no values)."""
    errors = exc.errors(include_input=False, include_url=False, include_context=False)
    parts = [f"{_loc(err['loc'])}: {err['msg']}" for err in errors[:limit]]
    if len(errors) > limit:
        parts.append(f"... and {len(errors) - limit} more")
    return "; ".join(parts)


def _loc(loc: tuple[Any, ...]) -> str:
    # Tagged unions and Decimal pipelines add internal steps (function-after[...]) to the location; drop them.
    cleaned = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]
    return ".".join(cleaned) or "(root)"


def _json_position(raw: bytes) -> str:
    try:
        json.loads(raw)
    except UnicodeDecodeError:
        return "it is not UTF-8 text"
    except json.JSONDecodeError as exc:
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:  # nesting deeper than the interpreter's stack: refused by the parser above as well
        return "it is nested too deeply"
    return "unparseable"
