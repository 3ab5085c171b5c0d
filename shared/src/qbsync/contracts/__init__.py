"""Event contracts: the envelope, every inbound and outbound event, value types, the registry and the codec."""

from qbsync.contracts import batchly, outbound
from qbsync.contracts.codec import DecodeError, decode_envelope, encode_envelope
from qbsync.contracts.envelope import ContractModel, Envelope
from qbsync.contracts.registry import EventSpec, all_events, lookup
from qbsync.contracts.types import Money, money

__all__ = [
    "ContractModel",
    "DecodeError",
    "Envelope",
    "EventSpec",
    "Money",
    "all_events",
    "batchly",
    "decode_envelope",
    "encode_envelope",
    "lookup",
    "money",
    "outbound",
]
