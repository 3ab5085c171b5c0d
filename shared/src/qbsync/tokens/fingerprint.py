"""The fingerprint of an access token: how a service names "this token got a 401" without sending the token.

A fingerprint is the first 32 hex characters (128 bits) of the token's SHA-256. It identifies a token among the few
an organization ever has at once, it cannot be turned back into the token, and it is safe in logs and request
bodies. token-manager stores the fingerprint of each organization's current access token, so a report can be
matched without decrypting anything.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["FINGERPRINT_LENGTH", "FINGERPRINT_PATTERN", "token_fingerprint"]

FINGERPRINT_LENGTH = 32
FINGERPRINT_PATTERN = re.compile(r"[0-9a-f]{32}")


def token_fingerprint(token: str) -> str:
    """``sha256(token)`` as lowercase hex, first 32 characters."""
    if not token:
        raise ValueError("cannot fingerprint an empty token")
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:FINGERPRINT_LENGTH]
