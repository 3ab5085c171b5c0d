"""Errors raised by the QBO client, and the one function that decides which one a response is.

Hierarchy::

    QboError                          every failure the client raises; nothing from httpx escapes
    ├── QboTransportError             timeout, connect error, dropped connection, garbled body   (retryable)
    ├── QboRequestError               httpx refused to build/send the request (bad URL, misuse)  (a bug)
    ├── QboAuthLostError              token provider says the organization must reconnect         (park)
    └── QboApiError                   QBO answered with a fault
        ├── QboAuthenticationError    401 / 3200 / 100 (after the one refresh-and-retry)
        ├── QboForbiddenError         403 / 3100 with 403 / 120 / 6190 (subscription lapsed)
        ├── QboThrottledError         429 / 3001, or the local budget could not be had in time (retryable)
        ├── QboStaleObjectError       5010: re-read, re-apply, retry
        ├── QboDuplicateNameError     6240: DisplayName taken by a customer, vendor or employee
        ├── QboDuplicateDocNumberError 6140
        ├── QboValidationError        400 and validation codes (2xxx, 4000-4002, 6000-6999, 1040, ...)
        ├── QboNotFoundError          610 (arrives as HTTP 400) / 404
        └── QboServerError            5xx incl. HTML 502/503 bodies, 10000, 3100 or 120 with 5xx (retryable)

Why one function: QBO's codes are overloaded (3100 is both "forbidden" and "internal error"; 610 arrives as 400;
faults sometimes arrive with HTTP 200), so the status and the code must be read together, in one place, with one
test table. :func:`error_from_response` is that place (:func:`read_response` is the same decision returning the
parsed body on success, so the client parses each body once); :func:`classify` is its table, which
:func:`error_from_fault` also uses for per-item batch faults (a code but no HTTP status of their own).

Amounts stay exact: JSON numbers with a fraction are parsed as ``Decimal``, never ``float``.
"""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar
from xml.etree import ElementTree

__all__ = [
    "FaultDetail",
    "QboApiError",
    "QboAuthLostError",
    "QboAuthenticationError",
    "QboDuplicateDocNumberError",
    "QboDuplicateNameError",
    "QboError",
    "QboForbiddenError",
    "QboNotFoundError",
    "QboRequestError",
    "QboServerError",
    "QboStaleObjectError",
    "QboThrottledError",
    "QboTransportError",
    "QboValidationError",
    "classify",
    "error_from_fault",
    "error_from_response",
    "parse_retry_after",
    "read_response",
]

_MAX_TEXT = 500  # message/detail are cut to this many characters: bounded logs and Kafka headers


@dataclass(frozen=True)
class FaultDetail:
    """One entry of a QBO ``Fault.Error`` list."""

    code: str | None
    message: str
    detail: str | None = None
    element: str | None = None


class QboError(Exception):
    """Base class of everything the QBO client raises.

    ``retryable`` tells a service's retry ladder whether trying again later can succeed; it is a class-level fact so
    that routing can be decided from the class alone (also when only its name travelled in a Kafka header).
    """

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        detail: str | None = None,
        element: str | None = None,
        intuit_tid: str | None = None,
        fault_type: str | None = None,
        retry_after: float | None = None,
        errors: tuple[FaultDetail, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = _cut(message) or type(self).__name__
        self.status = status
        self.code = code
        self.detail = _cut(detail)
        self.element = element or None
        self.intuit_tid = intuit_tid
        self.fault_type = fault_type
        self.retry_after = retry_after
        self.errors = errors

    def __str__(self) -> str:
        parts = [self.message]
        facts = [f"{name}={value}" for name, value in self._facts() if value is not None]
        if facts:
            parts.append("(" + ", ".join(facts) + ")")
        if self.detail:
            parts.append(f"- {self.detail}")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def _facts(self) -> list[tuple[str, object]]:
        return [
            ("status", self.status),
            ("code", self.code),
            ("element", self.element),
            ("intuit_tid", self.intuit_tid),
        ]


class QboTransportError(QboError):
    """The request did not complete at the network level (timeout, refused, reset, dropped, garbled).

    For a write the outcome is unknown: QBO may have applied it. Retrying with the same ``requestid`` is safe
    because QBO replays the original response for a repeated id.
    """

    retryable = True


class QboRequestError(QboError):
    """httpx refused to build or send the request (invalid URL, stream misuse): a bug, not a network fault."""


class QboAuthLostError(QboError):
    """The organization's QBO connection is gone (refresh failed, revoked): services park work until reconnect."""


class QboApiError(QboError):
    """QBO answered and said no. Subclasses say why."""


class QboAuthenticationError(QboApiError):
    """401 / 3200 / 100: the access token was refused, also after the one refresh-and-retry."""


class QboForbiddenError(QboApiError):
    """403 / 3100 with 403 / 120 / 6190: the app may not act on this company (scope, environment, disconnect)."""


class QboThrottledError(QboApiError):
    """429 / 3001, or the local rate budget could not be obtained within its bound. ``retry_after`` is the hint."""

    retryable = True


class QboStaleObjectError(QboApiError):
    """5010: the SyncToken sent is not the current one; re-read, re-apply, retry."""


class QboDuplicateNameError(QboApiError):
    """6240: the DisplayName is taken by a customer, vendor or employee (inactive ones included)."""


class QboDuplicateDocNumberError(QboApiError):
    """6140: the DocNumber is already used by another transaction of this type."""


class QboValidationError(QboApiError):
    """400 and the validation codes: the request itself is wrong and will be wrong again."""


class QboNotFoundError(QboApiError):
    """610 (sent by QBO with HTTP 400) or 404: the object or a referenced object does not exist or is inactive."""


class QboServerError(QboApiError):
    """5xx (JSON or the load balancer's HTML), 10000, 3100/120 with 5xx: QBO had a problem; try again later."""

    retryable = True


# ------------------------------------------------------------------------------------------------ classification

_AUTH_CODES = frozenset({"100", "3200"})
_FORBIDDEN_CODES = frozenset({"3100", "120", "6190"})
_SERVER_CODES = frozenset({"10000"})
_SPECIFIC_CODES: Mapping[str, type[QboApiError]] = {
    "3001": QboThrottledError,
    "5010": QboStaleObjectError,
    "6240": QboDuplicateNameError,
    "6140": QboDuplicateDocNumberError,
    "610": QboNotFoundError,
}
# Codes that are validation failures whatever status carried them (Intuit's list; ranges for the families).
_VALIDATION_CODES = frozenset({"500", "600", "620", "1040", "10100"})
_VALIDATION_RANGES = ((2000, 2999), (4000, 4999), (6000, 6999))


def classify(status: int | None, code: str | None) -> type[QboApiError]:
    """Pick the error class for a fault from its HTTP status and QBO code, read together.

    The order matters: 429 and 401 are decided by status whatever the code; a 5xx (or 10000) is a server error even
    when the code alone would mean "forbidden" (3100 and 120 are both seen with 500 in outages); only then do codes
    decide; unknown codes fall back by status. ``status`` is ``None`` for a batch item (it has no status of its own).
    """
    if status == 429 or code == "3001":
        return QboThrottledError
    if status == 401 or code in _AUTH_CODES:
        return QboAuthenticationError
    if (status is not None and status >= 500) or code in _SERVER_CODES:
        return QboServerError
    if status == 403 or code in _FORBIDDEN_CODES:
        return QboForbiddenError
    if code is not None and code in _SPECIFIC_CODES:
        return _SPECIFIC_CODES[code]
    if status == 404:
        return QboNotFoundError
    if code is not None and _is_validation_code(code):
        return QboValidationError
    if status == 400:
        return QboValidationError
    return QboApiError


def _is_validation_code(code: str) -> bool:
    if code in _VALIDATION_CODES:
        return True
    if not code.isdigit():
        return False
    number = int(code)
    return any(low <= number <= high for low, high in _VALIDATION_RANGES)


# ------------------------------------------------------------------------------------------------ the mapping


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> QboApiError | None:
    """Decide whether an HTTP response is a failure and, if so, build its error. The only such function.

    ``None`` means success: a 2xx whose body is a JSON object without a ``Fault``. A 2xx *with* a Fault (a QBO bug
    seen with 6190) is an error, and so is a 2xx whose body is not a JSON object. Failure bodies may be QBO JSON
    (``Fault``/``Error``, or the gateway's lowercase ``fault``/``error``), QBO XML (``<Fault><Error code=...>``,
    e.g. throttling), HTML from the load balancer (502/503), or nothing.
    """
    return _interpret(status, headers, body)[1]


def read_response(status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The JSON object of a successful response, or raise the error :func:`error_from_response` maps it to."""
    parsed, error = _interpret(status, headers, body)
    if error is not None:
        raise error
    return parsed


def _interpret(status: int, headers: Mapping[str, str], body: bytes) -> tuple[dict[str, Any], QboApiError | None]:
    parsed = _parse_body(body)
    fault = _find_fault(parsed) if isinstance(parsed, dict) else None
    if 200 <= status < 300 and fault is None and isinstance(parsed, dict):
        return parsed, None
    if fault is None:
        fault = _fault_without_body(status, parsed)
    error = error_from_fault(
        fault,
        status=status,
        intuit_tid=headers.get("intuit_tid"),
        retry_after=parse_retry_after(headers.get("retry-after")),
    )
    return {}, error


def error_from_fault(
    fault: Mapping[str, Any],
    *,
    status: int | None = None,
    intuit_tid: str | None = None,
    retry_after: float | None = None,
) -> QboApiError:
    """Build the error for a parsed Fault (``{"Error": [...], "type": ...}``), e.g. one batch item's fault."""
    details = _fault_details(fault)
    first = details[0] if details else FaultDetail(code=None, message=f"HTTP {status}")
    error_class = classify(status, first.code)
    return error_class(
        first.message,
        status=status,
        code=first.code,
        detail=first.detail,
        element=first.element,
        intuit_tid=intuit_tid,
        fault_type=_text(_get_ci(fault, "type")),
        retry_after=retry_after,
        errors=details,
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); ``None`` if absent or invalid."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds)


# ------------------------------------------------------------------------------------------------ body parsing

_MESSAGE_CODE = re.compile(r"errorCode=0*(\d+)")
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def _parse_body(body: bytes) -> Any:
    """JSON if it parses as JSON, a dict shaped like JSON if it is a QBO XML fault, else the text."""
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return None
    if text[0] in "{[":
        try:
            return json.loads(text, parse_float=Decimal)  # money stays exact: QBO amounts are decimals
        except ValueError:
            return text
    if text.startswith("<"):  # QBO XML fault, or the load balancer's HTML (which yields no fault)
        return _parse_xml_fault(text) or text
    return text


def _parse_xml_fault(text: str) -> dict[str, Any] | None:
    """Turn QBO's XML fault into the JSON fault shape. DOCTYPEs are refused, so no entity expansion is possible."""
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        return None
    try:
        root = ElementTree.fromstring(text)  # noqa: S314 - DOCTYPE/ENTITY rejected above; bodies are small
    except ElementTree.ParseError:
        return None
    fault = root if _local(root.tag) == "Fault" else next((e for e in root.iter() if _local(e.tag) == "Fault"), None)
    if fault is None:
        return None
    errors = []
    for error in (e for e in fault.iter() if _local(e.tag) == "Error"):
        fields = {_local(child.tag): (child.text or "").strip() for child in error}
        errors.append(
            {
                "code": error.get("code"),
                "element": error.get("element"),
                "Message": fields.get("Message", ""),
                "Detail": fields.get("Detail"),
            }
        )
    return {"Fault": {"Error": errors, "type": fault.get("type")}}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find_fault(parsed: dict[str, Any]) -> Mapping[str, Any] | None:
    fault = _get_ci(parsed, "fault")
    return fault if isinstance(fault, Mapping) else None


def _fault_without_body(status: int, parsed: Any) -> dict[str, Any]:
    """A synthetic fault for bodies that carry none (HTML from the load balancer, empty 5xx, plain text)."""
    summary = f"HTTP {status} with an unexpected body" if status < 300 else f"HTTP {status} without a QBO fault"
    detail = None
    if isinstance(parsed, str):
        detail = _SPACE.sub(" ", _TAG.sub(" ", parsed)).strip() or None
    return {"Error": [{"code": None, "Message": summary, "Detail": detail}], "type": None}


def _fault_details(fault: Mapping[str, Any]) -> tuple[FaultDetail, ...]:
    raw = _get_ci(fault, "error")
    items = raw if isinstance(raw, list) else [raw] if isinstance(raw, Mapping) else []
    details = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        message = _text(_get_ci(item, "message")) or ""
        code = _text(_get_ci(item, "code"))
        if code is None:  # gateway bodies sometimes carry the code only inside the message
            match = _MESSAGE_CODE.search(message)
            code = match.group(1) if match else None
        elif code.isdigit():
            code = str(int(code))  # "003200" and "3200" are the same code
        details.append(
            FaultDetail(
                code=code,
                message=message,
                detail=_text(_get_ci(item, "detail")),
                element=_text(_get_ci(item, "element")),
            )
        )
    return tuple(details)


def _get_ci(mapping: Mapping[str, Any], key: str) -> Any:
    """Case-insensitive key lookup: QBO writes ``Fault``/``Error``/``Message``, its gateway ``fault``/``error``."""
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    for name, value in mapping.items():
        if isinstance(name, str) and name.lower() == lowered:
            return value
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _cut(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"
