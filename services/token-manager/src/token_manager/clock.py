"""The clock token-manager reads for every expiry decision.

Production uses the system clock. Tests inject one that moves with the QBO emulator's clock, so "days" of token
rotation run in seconds without sleeping. Always timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "system_clock"]

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)
