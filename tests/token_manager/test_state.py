"""Unit tests of the OAuth state: signing, tampering, expiry, key rotation, and single use through the database."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qbsync.persistence import RUNTIME_BRANCH, Database, upgrade
from qbsync.settings import DatabaseSettings
from token_manager import store
from token_manager.app import BRANCH, MIGRATIONS
from token_manager.state import StateError, StateSigner

KEY_A = b"a" * 32
KEY_B = b"b" * 32
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def _signer(*keys: bytes, clock: Clock | None = None) -> StateSigner:
    return StateSigner(keys or (KEY_A,), ttl=timedelta(minutes=10), clock=clock or Clock())


def _reason(signer: StateSigner, value: str | None) -> str:
    with pytest.raises(StateError) as error:
        signer.verify(value)
    return error.value.reason


def test_a_state_round_trips_with_its_organization_and_expiry() -> None:
    org = uuid.uuid4()
    issued = _signer().issue(org)
    verified = _signer().verify(issued.value)
    assert verified.organization_id == org
    assert verified.nonce == issued.nonce
    assert verified.expires_at == NOW + timedelta(minutes=10)
    assert _signer().issue(org).nonce != issued.nonce, "every state has its own nonce"


def test_each_part_is_covered_by_the_signature() -> None:
    signer = _signer()
    issued = signer.issue(uuid.uuid4())
    version, nonce, org, expiry, mac = issued.value.split(".")
    other_nonce = base64.urlsafe_b64encode(b"\x00" * 16).rstrip(b"=").decode()
    assert _reason(signer, f"{version}.{other_nonce}.{org}.{expiry}.{mac}") == "bad_signature"
    assert _reason(signer, f"{version}.{nonce}.{uuid.uuid4().hex}.{expiry}.{mac}") == "bad_signature"
    assert _reason(signer, f"{version}.{nonce}.{org}.{int(expiry) + 3600}.{mac}") == "bad_signature"
    assert _reason(signer, f"{version}.{nonce}.{org}.{expiry}.{'A' * 43}") == "bad_signature"
    assert _reason(_signer(KEY_B), issued.value) == "bad_signature", "another key's state is forged"


@pytest.mark.parametrize("value", [None, "", "v1", "v2.a.b.c.d", "v1." + "x" * 300, "garbage with spaces"])
def test_malformed_states_are_refused(value: str | None) -> None:
    assert _reason(_signer(), value) == "malformed"


@given(st.text(max_size=300))
def test_no_arbitrary_text_verifies(value: str) -> None:
    with pytest.raises(StateError):
        _signer().verify(value)


def test_a_state_expires_after_its_ttl() -> None:
    clock = Clock()
    signer = _signer(clock=clock)
    issued = signer.issue(uuid.uuid4())
    clock.now = NOW + timedelta(minutes=9, seconds=59)
    signer.verify(issued.value)
    clock.now = NOW + timedelta(minutes=10)
    assert _reason(signer, issued.value) == "expired"


def test_states_signed_before_a_key_rotation_still_verify() -> None:
    issued = _signer(KEY_A).issue(uuid.uuid4())
    assert _signer(KEY_B, KEY_A).verify(issued.value).nonce == issued.nonce
    assert _signer(KEY_B, KEY_A).issue(uuid.uuid4()).value != issued.value


async def test_a_state_is_consumed_once_only_for_its_organization_and_before_expiry(tmp_path: Path) -> None:
    db = await Database.open("token-manager", DatabaseSettings(data_dir=tmp_path))
    try:
        await upgrade(db, (RUNTIME_BRANCH, BRANCH), version_locations=(MIGRATIONS,))
        org = uuid.uuid4()
        expires = NOW + timedelta(minutes=10)
        async with db.transaction() as conn:
            await store.insert_state(conn, nonce="n1", organization_id=org, expires_at=expires, now=NOW)
            await store.insert_state(conn, nonce="n2", organization_id=org, expires_at=expires, now=NOW)
        async with db.transaction() as conn:
            assert not await store.consume_state(conn, nonce="n1", organization_id=uuid.uuid4(), now=NOW)
            assert await store.consume_state(conn, nonce="n1", organization_id=org, now=NOW)
            assert not await store.consume_state(conn, nonce="n1", organization_id=org, now=NOW), "replayed"
            assert not await store.consume_state(conn, nonce="n2", organization_id=org, now=expires), "expired"
            assert await store.purge_states(conn, expires) == 1
            assert not await store.consume_state(conn, nonce="n2", organization_id=org, now=NOW)
    finally:
        await db.close()
