"""Logging for every qbsync process: one line per record, text or JSON, with secrets redacted.

Code should never log a secret in the first place; the redaction filter is the second line of defence. It masks
bearer tokens, OAuth token fields, Basic credentials and every secret value registered at start-up (client secrets,
encryption keys, database passwords) wherever they appear in a message or its arguments.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from datetime import UTC, datetime
from typing import Any

__all__ = ["RedactingFilter", "configure_logging", "redact", "register_secret"]

_MASK = "[REDACTED]"
_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)(basic\s+)[A-Za-z0-9+/=]{8,}"),
    re.compile(r"(?i)((?:access|refresh|id)_token[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]{4,}"),
    re.compile(r"(?i)((?:client_secret|password|verifier_token|encryption_key)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]{1,}"),
    re.compile(r"(?i)((?:refresh_token|code)=)[^\s&\"']{4,}"),
    re.compile(r"(postgres(?:ql)?(?:\+\w+)?://[^:/@\s]+:)[^@\s]+(@)"),
]
_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears in a log line from now on (values shorter than 6 chars are ignored)."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(
            lambda m: m.group(1) + _MASK + (m.group(2) if m.lastindex and m.lastindex >= 2 else ""), text
        )
    if _secrets:
        with _lock:
            secrets = sorted(_secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, _MASK)
    return text


class RedactingFilter(logging.Filter):
    """Renders the message once, redacts it, and drops the arguments so nothing unredacted can be formatted later."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = f"{record.msg} {record.args}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class _JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("event_id", "event_type", "organization_id"):
            value = getattr(record, key, None)
            if value is not None:
                document[key] = str(value)
        if record.exc_text:
            document["exception"] = record.exc_text
        return json.dumps(document, ensure_ascii=False)


def configure_logging(service: str, *, level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger once per process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(_JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)-7s {service} %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Chatty libraries: their INFO lines repeat what we log better.
    for noisy in ("aiokafka", "uvicorn.access", "alembic.runtime.migration", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
