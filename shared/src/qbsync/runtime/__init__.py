"""The consumer runtime: manual acknowledgement, retry tiers, dead letters, idempotency, parking."""

from qbsync.runtime.consumer import ConsumerRuntime
from qbsync.runtime.errors import AuthLost, DependencyNotReady, PermanentError, SyncError, TransientError, classify
from qbsync.runtime.handlers import Completed, Deferred, HandlerContext, HandlerRegistry, Ignored, Outcome, Recorded
from qbsync.runtime.kafka import OutboundRecord, Publisher, ensure_topics, record_for

__all__ = [
    "AuthLost",
    "Completed",
    "ConsumerRuntime",
    "Deferred",
    "DependencyNotReady",
    "HandlerContext",
    "HandlerRegistry",
    "Ignored",
    "OutboundRecord",
    "Outcome",
    "PermanentError",
    "Publisher",
    "Recorded",
    "SyncError",
    "TransientError",
    "classify",
    "ensure_topics",
    "record_for",
]
