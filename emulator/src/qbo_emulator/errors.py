"""QBO's error bodies, byte-shaped as the service and its gateway send them.

Three families exist (facts §1, §3, §4):

* ``Fault`` — the Accounting service's own validation/system faults, HTTP 400 (or 500), ``{"Fault": {"Error":
  [{"Message", "Detail", "code", "element"}], "type"}, "time"}``. Raised as :class:`QboFault`.
* the gateway's lowercase JSON for 401/403 (``{"fault": {"error": [...], "type": "AUTHENTICATION"}, "time":
  <epoch ms>}``).
* the gateway's 429 (XML by default) and the load balancer's 502/503/504 HTML pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from qbo_emulator.clock import format_epoch_ms

__all__ = [
    "QboFault",
    "auth_fault_body",
    "duplicate_docnumber",
    "duplicate_name",
    "forbidden_fault_body",
    "html_error_page",
    "invalid_reference",
    "object_inactive",
    "object_not_found",
    "required_param",
    "stale_object",
    "string_length",
    "throttle_json_body",
    "throttle_xml_body",
    "unsupported_operation",
    "validation",
]

VALIDATION_FAULT: Final = "ValidationFault"
SYSTEM_FAULT: Final = "SystemFault"


class QboFault(Exception):
    """A QBO service fault: raised by business rules, rendered as the ``Fault`` wrapper."""

    def __init__(
        self,
        code: str,
        message: str,
        detail: str,
        element: str = "",
        *,
        status: int = 400,
        fault_type: str = VALIDATION_FAULT,
    ) -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.code = code
        self.message = message
        self.detail = detail
        self.element = element
        self.status = status
        self.fault_type = fault_type

    def error_item(self) -> dict[str, str]:
        """One ``Fault.Error[]`` item."""
        return {"Message": self.message, "Detail": self.detail, "code": self.code, "element": self.element}

    def fault(self) -> dict[str, Any]:
        """The ``Fault`` object (without the ``time`` sibling), as batch items carry it."""
        return {"Error": [self.error_item()], "type": self.fault_type}


def validation(detail: str, element: str = "") -> QboFault:
    """6000, QBO's generic business validation error."""
    return QboFault(
        "6000",
        "A business validation error has occurred while processing your request",
        f"Business Validation Error: {detail}",
        element,
    )


def stale_object(user: str = "qbsync") -> QboFault:
    """5010 with the wording QBO uses (it names the other user)."""
    return QboFault(
        "5010",
        "Stale Object Error",
        f"Stale Object Error : You and {user} were working on this at the same time. "
        f"{user} finished before you did, so your work was not saved.",
        "SyncToken",
    )


def duplicate_name() -> QboFault:
    """6240: DisplayName already used by a customer, vendor or employee (inactive ones included)."""
    return QboFault(
        "6240",
        "Duplicate Name Exists Error",
        "The name supplied already exists. : Another customer, vendor or employee is already using this "
        "name. Please use a different name.",
    )


def duplicate_docnumber(doc_number: str, txn_type: str, txn_id: str) -> QboFault:
    """6140, naming the transaction that already holds the number."""
    return QboFault(
        "6140",
        "Duplicate Document Number Error",
        "Duplicate Document Number Error : You must specify a different number. This number has already "
        f"been used. DocNumber={doc_number} is assigned to TxnType={txn_type} with TxnId={txn_id}",
        "DocNumber",
    )


def string_length(element: str, maximum: int, supplied: int) -> QboFault:
    """2050 with QBO's thousands-separated figures ("Min:0 Max:1,000 supported. Supplied length:1,001")."""
    return QboFault(
        "2050",
        "String length is either shorter or longer than supported by specification",
        f"String length specified does not match the supported length. Min:0 Max:{maximum:,} supported. "
        f"Supplied length:{supplied:,}",
        element,
    )


def required_param(element: str) -> QboFault:
    """2020 Required param missing."""
    return QboFault(
        "2020",
        "Required param missing, need to supply the required value for the API",
        f"Required parameter {element} is missing in the request",
        element,
    )


def invalid_reference(entity: str, ref_id: str, element: str) -> QboFault:
    """2500: the referenced object does not exist (never existed or was deleted)."""
    return QboFault(
        "2500", "Invalid Reference Id", f"Invalid Reference Id : {entity} element id {ref_id} not found", element
    )


_INACTIVE_DETAIL: Final = (
    "Object Not Found : Something you're trying to use has been made inactive. Check the fields with "
    "accounts, customers, items, vendors or employees."
)


def object_inactive(element: str = "") -> QboFault:
    """610 for a reference to an inactive name-list object (HTTP 400, not 404)."""
    return QboFault("610", "Object Not Found", _INACTIVE_DETAIL, element)


def object_not_found() -> QboFault:
    """610 as a read of a missing or deleted Id returns it."""
    return QboFault("610", "Object Not Found", _INACTIVE_DETAIL)


def unsupported_operation(detail: str) -> QboFault:
    """500 Unsupported Operation (HTTP 400): wrong verb, unknown resource, delete of a name-list object."""
    return QboFault("500", "Unsupported Operation", detail)


def auth_fault_body(now: datetime, detail: str | None) -> dict[str, Any]:
    """The gateway's 401 body (newer JSON shape, lowercase keys, epoch-ms ``time``)."""
    return _gateway_body(
        now, "message=AuthenticationFailed; errorCode=003200; statusCode=401", detail, "3200", "AUTHENTICATION"
    )


def forbidden_fault_body(now: datetime) -> dict[str, Any]:
    """The gateway's 403 body for a token used against a company it was not issued for."""
    return _gateway_body(
        now, "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403", None, "3100", "SERVICE"
    )


def _gateway_body(now: datetime, message: str, detail: str | None, code: str, kind: str) -> dict[str, Any]:
    return {
        "warnings": None,
        "intuitObject": None,
        "fault": {
            "error": [{"message": message, "detail": detail, "code": code, "element": None}],
            "type": kind,
        },
        "report": None,
        "queryResponse": None,
        "batchItemResponse": [],
        "attachableResponse": [],
        "syncErrorResponse": None,
        "requestId": None,
        "time": format_epoch_ms(now),
        "status": None,
        "cdcresponse": [],
    }


_THROTTLE_MESSAGE: Final = "message=ThrottleExceeded; errorCode=003001; statusCode=429"
_THROTTLE_DETAIL: Final = "The request limit was reached.  Try again later"


def throttle_xml_body(time_text: str) -> str:
    """The 429 body as seen in the wild (XML, ``Fault type="SERVICE"``, code 3001)."""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{time_text}">'
        f'<Fault type="SERVICE"><Error code="3001" element=""><Message>{_THROTTLE_MESSAGE}</Message>'
        f"<Detail>{_THROTTLE_DETAIL}</Detail></Error></Fault></IntuitResponse>"
    )


def throttle_json_body(time_text: str) -> dict[str, Any]:
    """The same 429 fault in QBO's JSON ``Fault`` shape (configurable alternative)."""
    error = {"Message": _THROTTLE_MESSAGE, "Detail": _THROTTLE_DETAIL, "code": "3001", "element": ""}
    return {"Fault": {"Error": [error], "type": "SERVICE"}, "time": time_text}


_STATUS_TEXT: Final[Mapping[int, str]] = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Time-out",
}


def html_error_page(status: int) -> str:
    """The load balancer's bare HTML page (facts §4: 502/503 arrive as HTML, not JSON)."""
    text = _STATUS_TEXT.get(status, "Error")
    return (
        f"<html>\r\n<head><title>{status} {text}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {text}</h1></center>\r\n</body>\r\n</html>\r\n"
    )
