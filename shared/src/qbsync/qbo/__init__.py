"""The QBO client: the only way a qbsync service talks to QuickBooks Online.

Typical use (one client per process, built in the service's composition root)::

    async with QboClient(settings, token_provider) as qbo:
        company = qbo.company(organization_id)
        customer = await company.create("Customer", {"DisplayName": name},
                                        request_id=request_id(event.event_id, "customer.create"))

See ``docs/qbo-client.md`` for the error tree, the retry and limiter policy and how services route failures.
"""

from qbsync.qbo.auth import AccessGrant, StaticTokenProvider, TokenProvider
from qbsync.qbo.batch import BatchItemResult, BatchOperation
from qbsync.qbo.cdc import CdcResult
from qbsync.qbo.client import QboClient, QboCompany
from qbsync.qbo.config import QboClientSettings
from qbsync.qbo.errors import (
    QboApiError,
    QboAuthenticationError,
    QboAuthLostError,
    QboDuplicateDocNumberError,
    QboDuplicateNameError,
    QboError,
    QboForbiddenError,
    QboNotFoundError,
    QboRequestError,
    QboServerError,
    QboStaleObjectError,
    QboThrottledError,
    QboTransportError,
    QboValidationError,
)
from qbsync.qbo.limiter import InProcessRateBudget, RateBudget, Reservation
from qbsync.qbo.paging import QueryPage, QueryPagingLimitError
from qbsync.qbo.query import QboQuery
from qbsync.qbo.request_ids import request_id
from qbsync.qbo.webhooks import WebhookEvent, parse_webhook, verify_webhook_signature

__all__ = [
    "AccessGrant",
    "BatchItemResult",
    "BatchOperation",
    "CdcResult",
    "InProcessRateBudget",
    "QboApiError",
    "QboAuthLostError",
    "QboAuthenticationError",
    "QboClient",
    "QboClientSettings",
    "QboCompany",
    "QboDuplicateDocNumberError",
    "QboDuplicateNameError",
    "QboError",
    "QboForbiddenError",
    "QboNotFoundError",
    "QboQuery",
    "QboRequestError",
    "QboServerError",
    "QboStaleObjectError",
    "QboThrottledError",
    "QboTransportError",
    "QboValidationError",
    "QueryPage",
    "QueryPagingLimitError",
    "RateBudget",
    "Reservation",
    "StaticTokenProvider",
    "TokenProvider",
    "WebhookEvent",
    "parse_webhook",
    "request_id",
    "verify_webhook_signature",
]
