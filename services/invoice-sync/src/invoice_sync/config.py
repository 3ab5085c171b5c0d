"""invoice-sync's settings: the ``invoice_sync`` section of the one settings tree (``QBSYNC_INVOICE_SYNC__*``)."""

from qbsync.settings import InvoiceSyncSettings

__all__ = ["InvoiceSyncSettings"]
