"""requestids derive from the event, so every attempt and every redelivery sends the same one."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from qbsync.qbo.request_ids import batch_chunk_request_id, request_id, validate_request_id


def test_request_id_is_deterministic_36_chars_and_operation_specific() -> None:
    event = uuid4()
    first = request_id(event, "invoice.create")
    assert first == request_id(event, "invoice.create")
    assert len(first) == 36
    assert UUID(first).version == 5
    assert first != request_id(event, "invoice.void")
    assert first != request_id(uuid4(), "invoice.create")


def test_known_value_is_stable_across_releases() -> None:
    # Changing the namespace would make in-flight retries create duplicates: pin one value.
    event = UUID("00000000-0000-0000-0000-000000000001")
    assert request_id(event, "customer.create") == "94a15a79-e550-50bd-abe7-e9c5627efd78"


def test_batch_chunk_ids_fit_qbos_batch_limit() -> None:
    ids = {batch_chunk_request_id("evt-1", n) for n in range(5)}
    assert len(ids) == 5
    assert all(len(i) <= 36 for i in ids)
    assert batch_chunk_request_id("evt-1", 0) == batch_chunk_request_id("evt-1", 0)


def test_operation_is_required_and_validation_limits() -> None:
    with pytest.raises(ValueError):
        request_id(uuid4(), "")
    assert validate_request_id("a" * 50) == "a" * 50
    with pytest.raises(ValueError):
        validate_request_id("a" * 37, limit=36)
