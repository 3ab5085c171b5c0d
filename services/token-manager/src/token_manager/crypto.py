"""Tokens at rest: Fernet under a key ring with rotation, each ciphertext bound to its row and column.

* **Key ring**: ``QBSYNC_TOKEN_MANAGER__ENCRYPTION_KEYS`` (a JSON list) or ``…__ENCRYPTION_KEY_FILE`` (one key per
  line, ``#`` comments). The first key encrypts; every key decrypts (``MultiFernet``). To rotate: put a new key first,
  restart — rows written under an older key are re-encrypted at start-up — then drop the old key.
* **Production** refuses to start without a configured key. **Development** generates one into
  ``<data_dir>/token-manager.key`` (mode 0600) and warns: losing that file loses every connection.
* **Binding**: the plaintext is ``<context>`` + ASCII unit separator + ``<token>``; the context names the
  organization and the column, so a ciphertext copied into another row or column does not decrypt (a database
  writer cannot swap tokens between organizations).
* The same keys, through HMAC with a fixed label, give the key that signs OAuth ``state`` values (one secret to
  manage; rotating it rotates both).

Nothing here logs or raises with key material or plaintext in the message.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from qbsync.settings import TokenManagerSettings

__all__ = [
    "DEV_KEY_FILENAME",
    "EncryptionKeyError",
    "KeyRing",
    "TokenCipher",
    "TokenDecryptionError",
    "load_key_ring",
]

log = logging.getLogger("token_manager.crypto")

DEV_KEY_FILENAME = "token-manager.key"
_SEPARATOR = b"\x1f"  # ASCII unit separator: never part of a context or an OAuth token


class EncryptionKeyError(RuntimeError):
    """The encryption keys are missing or unusable (a configuration problem; start-up stops)."""


class TokenDecryptionError(RuntimeError):
    """A stored ciphertext cannot be read with any configured key, or belongs to another row or column."""


@dataclass(frozen=True, repr=False)
class KeyRing:
    """Fernet keys, current first. ``source`` says where they came from (for the start-up log; no key material)."""

    keys: tuple[bytes, ...]
    source: str

    def __post_init__(self) -> None:
        if not self.keys:
            raise EncryptionKeyError("the key ring is empty")
        for index, key in enumerate(self.keys):
            try:
                Fernet(key)
            except (ValueError, TypeError):
                raise EncryptionKeyError(
                    f"encryption key #{index + 1} from {self.source} is not a Fernet key "
                    "(32 url-safe base64-encoded bytes; generate one with Fernet.generate_key())"
                ) from None


def load_key_ring(settings: TokenManagerSettings, *, production: bool, data_dir: Path) -> KeyRing:
    """The configured keys; in development without any, a generated key kept in ``data_dir``."""
    configured = [k.get_secret_value().strip() for k in settings.encryption_keys if k.get_secret_value().strip()]
    if configured and settings.encryption_key_file is not None:
        raise EncryptionKeyError("set either token_manager.encryption_keys or token_manager.encryption_key_file")
    if configured:
        return KeyRing(_unique(configured), "QBSYNC_TOKEN_MANAGER__ENCRYPTION_KEYS")
    if settings.encryption_key_file is not None:
        path = settings.encryption_key_file
        return KeyRing(_unique(read_key_file(path)), f"key file {path}")
    if production:
        raise EncryptionKeyError(
            "token-manager refuses to start in production without an encryption key: set "
            "QBSYNC_TOKEN_MANAGER__ENCRYPTION_KEYS or QBSYNC_TOKEN_MANAGER__ENCRYPTION_KEY_FILE"
        )
    path = data_dir / DEV_KEY_FILENAME
    created = _ensure_development_key(path)
    log.warning(
        "development: %s the token encryption key at %s; production refuses to start without a configured key "
        "(losing this file loses every stored QuickBooks connection)",
        "generated" if created else "using",
        path,
    )
    return KeyRing(_unique(read_key_file(path)), f"development key file {path}")


def read_key_file(path: Path) -> list[str]:
    """One key per line, the current one first; blank lines and ``#`` comments are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EncryptionKeyError(f"cannot read the encryption key file {path}: {exc.strerror}") from None
    keys = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    if not keys:
        raise EncryptionKeyError(f"the encryption key file {path} holds no key")
    return keys


def _ensure_development_key(path: Path) -> bool:
    """Create the key file (0600) unless it exists; True when created. Safe against two processes racing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(b"# token-manager development key (current first). Production: configure keys instead.\n")
        handle.write(Fernet.generate_key() + b"\n")
    return True


def _unique(keys: list[str]) -> tuple[bytes, ...]:
    seen: dict[bytes, None] = {}
    for key in keys:
        seen.setdefault(key.encode("ascii", errors="replace"), None)
    return tuple(seen)


class TokenCipher:
    """Encrypts and decrypts token values bound to a context (``"<organization>/<column>"``)."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring
        self._primary = Fernet(ring.keys[0])
        self._all = MultiFernet([Fernet(key) for key in ring.keys])

    @property
    def key_count(self) -> int:
        return len(self._ring.keys)

    def secrets(self) -> tuple[str, ...]:
        """The key strings, for the log redaction filter."""
        return tuple(key.decode("ascii", errors="replace") for key in self._ring.keys)

    def encrypt(self, value: str, *, context: str) -> str:
        if not value:
            raise ValueError("refusing to encrypt an empty token")
        plaintext = context.encode("utf-8") + _SEPARATOR + value.encode("utf-8")
        return self._all.encrypt(plaintext).decode("ascii")

    def decrypt(self, ciphertext: str, *, context: str) -> str:
        try:
            plaintext = self._all.decrypt(ciphertext.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise TokenDecryptionError(
                f"the stored token for {context} cannot be decrypted with any configured key"
            ) from None
        bound, separator, value = plaintext.partition(_SEPARATOR)
        if not separator or not hmac.compare_digest(bound, context.encode("utf-8")):
            raise TokenDecryptionError(f"the stored token for {context} belongs to another row or column")
        return value.decode("utf-8")

    def is_current(self, ciphertext: str) -> bool:
        """Whether ``ciphertext`` is encrypted under the current (first) key."""
        try:
            self._primary.decrypt(ciphertext.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            return False
        return True

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt under the current key (the bound context is kept)."""
        try:
            return self._all.rotate(ciphertext.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError):
            raise TokenDecryptionError("a stored token cannot be decrypted with any configured key") from None

    def derived_keys(self, purpose: str) -> tuple[bytes, ...]:
        """HMAC-SHA256(key, purpose) for every key, current first: independent keys for other uses (state)."""
        label = f"qbsync/token-manager/{purpose}".encode()
        return tuple(hmac.new(key, label, hashlib.sha256).digest() for key in self._ring.keys)
