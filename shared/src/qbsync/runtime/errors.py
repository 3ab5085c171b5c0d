"""What can go wrong in a handler, and the one function that decides where a failed record goes.

Handlers raise; they never choose topics. :func:`classify` maps any exception to an error class, and the class
alone decides the path (architecture §4):

======================  ===================================================================
error class             path
======================  ===================================================================
``transient``           retry ladder (timeouts, 5xx, HTML 502/503, 429, stale object)
``dependency``          retry ladder (e.g. an invoice whose customer is still being synced)
``internal``            retry ladder (an unexpected exception: a bug may be fixed and replayed)
``auth_lost``           parked until the organization reconnects; never dead-lettered
``permanent``           dead-letter topic at once (validation, a name held by a vendor, ...)
``malformed``           dead-letter topic at once (not JSON, schema violation, bad headers, ...)
======================  ===================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from sqlalchemy.exc import DBAPIError, IntegrityError

from qbsync.qbo import errors as qbo

__all__ = [
    "AuthLost",
    "Classified",
    "DependencyNotReady",
    "ErrorClass",
    "PermanentError",
    "SyncError",
    "TransientError",
    "classify",
    "is_laddered",
]

ErrorClass = Literal["transient", "dependency", "internal", "auth_lost", "permanent", "malformed"]

_MESSAGE_LIMIT = 1_000


class SyncError(Exception):
    """Base of the errors a handler raises on purpose. ``code`` is stable and machine-readable."""

    error_class: ClassVar[ErrorClass] = "internal"

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint


class TransientError(SyncError):
    """Trying again later can succeed (a timeout, an outage)."""

    error_class = "transient"


class DependencyNotReady(SyncError):
    """Something this record needs is not synced yet but will be (it goes through the ladder)."""

    error_class = "dependency"


class PermanentError(SyncError):
    """Trying again cannot succeed without a person changing data; ``field`` names the culprit when known."""

    error_class = "permanent"

    def __init__(
        self, message: str, *, code: str | None = None, hint: str | None = None, field: str | None = None
    ) -> None:
        super().__init__(message, code=code, hint=hint)
        self.field = field


class AuthLost(SyncError):
    """The organization's QuickBooks connection is lost; its work waits for a reconnect."""

    error_class = "auth_lost"


@dataclass(frozen=True, slots=True)
class Classified:
    error_class: ErrorClass
    code: str | None
    message: str
    hint: str | None
    #: Exception class name, for the dead-letter header and logs.
    exception_type: str


def classify(exc: BaseException) -> Classified:
    """The single place that decides what a failure means."""
    name = type(exc).__name__
    if isinstance(exc, SyncError):
        return Classified(exc.error_class, exc.code, _clip(exc.message), exc.hint, name)
    if isinstance(exc, qbo.QboAuthLostError):
        return Classified("auth_lost", "auth_lost", _clip(str(exc)), _RECONNECT_HINT, name)
    if isinstance(exc, qbo.QboError):
        code = getattr(exc, "code", None)
        message = _clip(str(exc))
        if isinstance(exc, qbo.QboStaleObjectError):
            # The handler normally re-reads and retries in place; if it gives up, later is likely to work.
            return Classified("transient", code, message, None, name)
        if isinstance(exc, qbo.QboAuthenticationError):
            # token-manager gave a fresh token and QBO still said 401: treat as transient (Intuit incidents happen);
            # a truly lost connection arrives as QboAuthLostError from the token provider instead.
            return Classified("transient", code, message, None, name)
        if isinstance(exc, qbo.QboRequestError):
            return Classified("internal", code, message, None, name)
        return Classified("transient" if exc.retryable else "permanent", code, message, None, name)
    if isinstance(exc, TimeoutError):
        return Classified("transient", "timeout", _clip(str(exc) or "handler timed out"), None, name)
    if is_database_outage(exc):
        return Classified("transient", "database_unavailable", _clip(f"{name}: {exc}"), None, name)
    return Classified("internal", "internal", _clip(f"{name}: {exc}"), None, name)


def is_database_outage(exc: BaseException) -> bool:
    """Database trouble that may pass (a dropped connection, a lock, the server gone) — never a constraint."""
    if isinstance(exc, IntegrityError):
        return False
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or type(exc).__name__ in ("OperationalError", "InterfaceError")
    return False


def is_laddered(error_class: ErrorClass) -> bool:
    """Whether a failure of this class goes through the retry tiers (else: park or dead letter)."""
    return error_class in ("transient", "dependency", "internal")


_RECONNECT_HINT = "Reconnect QuickBooks for this organization; parked work resumes automatically after reconnect."


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"
