"""Logging hygiene for the served emulator.

An injected "connection dropped" fault works by raising :class:`~qbo_emulator.responses.ConnectionDropped` after
the response has started, which makes uvicorn close the socket — and log a full traceback as if the app had
crashed. :func:`install_log_filters` turns those records into one quiet debug line.
"""

from __future__ import annotations

import logging

from qbo_emulator.responses import ConnectionDropped

__all__ = ["DroppedConnectionFilter", "install_log_filters"]


class DroppedConnectionFilter(logging.Filter):
    """Drop uvicorn's error record for an intentional connection drop."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ConnectionDropped):
            logging.getLogger("qbo_emulator.faults").debug("connection dropped by an injected fault")
            return False
        return True


def install_log_filters() -> None:
    """Attach the filter to uvicorn's error logger (idempotent)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, DroppedConnectionFilter) for f in logger.filters):
        logger.addFilter(DroppedConnectionFilter())
