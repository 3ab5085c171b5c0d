"""Unit tests of the token cipher and the key ring: rotation, binding, key sources, production refusal."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from qbsync.settings import TokenManagerSettings
from token_manager.crypto import (
    DEV_KEY_FILENAME,
    EncryptionKeyError,
    KeyRing,
    TokenCipher,
    TokenDecryptionError,
    load_key_ring,
)

TOKEN = "AB11" + "x" * 60
ORG = "0f7d5a3e-7a1c-4c2e-9d0a-3b2f6c1e9a11"


def _ring(*keys: bytes) -> KeyRing:
    return KeyRing(tuple(keys), "test")


def test_tokens_round_trip_and_are_never_stored_in_clear() -> None:
    cipher = TokenCipher(_ring(Fernet.generate_key()))
    first = cipher.encrypt(TOKEN, context=f"{ORG}/refresh_token")
    second = cipher.encrypt(TOKEN, context=f"{ORG}/refresh_token")
    assert first != second, "a fresh IV every time"
    assert TOKEN not in first
    assert cipher.decrypt(first, context=f"{ORG}/refresh_token") == TOKEN


def test_a_ciphertext_moved_to_another_row_or_column_does_not_decrypt() -> None:
    cipher = TokenCipher(_ring(Fernet.generate_key()))
    stored = cipher.encrypt(TOKEN, context=f"{ORG}/refresh_token")
    with pytest.raises(TokenDecryptionError, match="another row or column"):
        cipher.decrypt(stored, context=f"{ORG}/access_token")
    with pytest.raises(TokenDecryptionError):
        cipher.decrypt(stored, context="11111111-2222-3333-4444-555555555555/refresh_token")


def test_key_rotation_new_key_first_old_key_still_decrypts_and_rotate_moves_to_the_new_key() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    stored = TokenCipher(_ring(old)).encrypt(TOKEN, context="c")
    rotating = TokenCipher(_ring(new, old))
    assert rotating.decrypt(stored, context="c") == TOKEN
    assert not rotating.is_current(stored)
    rotated = rotating.rotate(stored)
    assert rotating.is_current(rotated)
    assert TokenCipher(_ring(new)).decrypt(rotated, context="c") == TOKEN, "the old key can be dropped"
    assert rotating.is_current(rotating.encrypt(TOKEN, context="c")), "new writes use the first key"


def test_an_unknown_key_fails_without_revealing_anything() -> None:
    stored = TokenCipher(_ring(Fernet.generate_key())).encrypt(TOKEN, context="c")
    other_key = Fernet.generate_key()
    with pytest.raises(TokenDecryptionError) as error:
        TokenCipher(_ring(other_key)).decrypt(stored, context="c")
    assert TOKEN not in str(error.value)
    assert other_key.decode() not in str(error.value)
    with pytest.raises(TokenDecryptionError):
        TokenCipher(_ring(other_key)).rotate(stored)


def test_derived_keys_are_distinct_per_purpose_and_follow_the_ring_order() -> None:
    a, b = Fernet.generate_key(), Fernet.generate_key()
    cipher = TokenCipher(_ring(a, b))
    state = cipher.derived_keys("oauth-state")
    assert len(state) == 2
    assert len(set(state)) == 2
    assert state != cipher.derived_keys("something-else")
    assert state[0] == TokenCipher(_ring(a)).derived_keys("oauth-state")[0]
    assert a not in state


def test_production_refuses_to_start_without_a_key(tmp_path: Path) -> None:
    with pytest.raises(EncryptionKeyError, match="refuses to start in production"):
        load_key_ring(TokenManagerSettings(), production=True, data_dir=tmp_path)
    assert not (tmp_path / DEV_KEY_FILENAME).exists(), "no key is generated in production"


def test_development_generates_a_private_key_file_once_and_reuses_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = load_key_ring(TokenManagerSettings(), production=False, data_dir=tmp_path / "data")
    path = tmp_path / "data" / DEV_KEY_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "generated the token encryption key" in caplog.text
    assert first.keys[0].decode() not in caplog.text, "the key itself is never logged"
    second = load_key_ring(TokenManagerSettings(), production=False, data_dir=tmp_path / "data")
    assert second.keys == first.keys


def test_keys_come_from_settings_or_a_key_file_not_both(tmp_path: Path) -> None:
    current, previous = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    from_settings = load_key_ring(
        TokenManagerSettings(encryption_keys=(SecretStr(current), SecretStr(previous), SecretStr(current))),
        production=True,
        data_dir=tmp_path,
    )
    assert from_settings.keys == (current.encode(), previous.encode()), "in order, duplicates dropped"

    key_file = tmp_path / "keys"
    key_file.write_text(f"# rotated 2026-11\n\n{current}\n  {previous}  \n")
    from_file = load_key_ring(TokenManagerSettings(encryption_key_file=key_file), production=True, data_dir=tmp_path)
    assert from_file.keys == (current.encode(), previous.encode())

    with pytest.raises(EncryptionKeyError, match="either"):
        load_key_ring(
            TokenManagerSettings(encryption_keys=(SecretStr(current),), encryption_key_file=key_file),
            production=True,
            data_dir=tmp_path,
        )
    with pytest.raises(EncryptionKeyError, match="cannot read"):
        load_key_ring(
            TokenManagerSettings(encryption_key_file=tmp_path / "missing"), production=True, data_dir=tmp_path
        )
    (tmp_path / "empty").write_text("# nothing\n")
    with pytest.raises(EncryptionKeyError, match="holds no key"):
        load_key_ring(TokenManagerSettings(encryption_key_file=tmp_path / "empty"), production=True, data_dir=tmp_path)


def test_a_malformed_key_is_refused_without_echoing_it(tmp_path: Path) -> None:
    bad = "this-is-not-a-fernet-key-but-a-secret-value"
    with pytest.raises(EncryptionKeyError) as error:
        load_key_ring(TokenManagerSettings(encryption_keys=(SecretStr(bad),)), production=True, data_dir=tmp_path)
    assert bad not in str(error.value)
    assert "#1" in str(error.value)
