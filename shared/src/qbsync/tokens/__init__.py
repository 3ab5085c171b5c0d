"""Access to token-manager for the sync services: the HTTP client, its wire contract and token fingerprints.

Sync services never see a refresh token and never call Intuit's OAuth endpoints; they hold a
:class:`TokenManagerClient` (a :class:`qbsync.qbo.TokenProvider`) and hand it to their :class:`qbsync.qbo.QboClient`.
"""

from qbsync.tokens.client import TokenManagerClient
from qbsync.tokens.fingerprint import token_fingerprint

__all__ = ["TokenManagerClient", "token_fingerprint"]
