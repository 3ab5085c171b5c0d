"""Identifiers shaped like Intuit's: realm ids, tokens, authorization codes and ``intuit_tid``.

Shapes matter to clients: real access tokens are ~1 kB JWE strings (a ``varchar(255)`` column breaks on them),
refresh tokens start ``AB11`` and realm ids are long digit strings. Values are random (``secrets``) and
opaque: nothing can be decoded from them.
"""

from __future__ import annotations

import base64
import secrets
import string
from typing import Final

__all__ = ["access_token", "auth_code", "intuit_tid", "realm_id", "refresh_token"]

_ALNUM: Final = string.ascii_letters + string.digits
# The real tokens' first segment is this JWE header, base64url of {"enc":"A128CBC-HS256","alg":"dir"}.
_JWE_HEADER: Final = "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0"


def _b64url(size: int) -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(size)).rstrip(b"=").decode("ascii")


def _alnum(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def access_token() -> str:
    """An opaque ~950-character bearer token with the JWE layout real ones have (header..iv.body.tag)."""
    return f"{_JWE_HEADER}..{_b64url(16)}.{_b64url(640)}.{_b64url(16)}"


def refresh_token() -> str:
    """A 50-character refresh token starting ``AB11`` (Intuit logs show that prefix)."""
    return "AB11" + _alnum(46)


def auth_code() -> str:
    """A single-use authorization code."""
    return "AB11" + _alnum(41)


def realm_id() -> str:
    """A 16-digit company id like sandbox ones (``9341…``)."""
    return "9341" + "".join(secrets.choice(string.digits) for _ in range(12))


def intuit_tid() -> str:
    """A transaction id as Intuit's gateway stamps it: ``1-6239ef57-12b393bc6e87cb646d9147e2``."""
    return f"1-{secrets.token_hex(4)}-{secrets.token_hex(12)}"
