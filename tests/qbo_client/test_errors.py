"""The one mapping from (status, headers, body) to an error class, for every code and shape in the QBO facts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from qbsync.qbo.errors import (
    QboApiError,
    QboAuthenticationError,
    QboDuplicateDocNumberError,
    QboDuplicateNameError,
    QboForbiddenError,
    QboNotFoundError,
    QboServerError,
    QboStaleObjectError,
    QboThrottledError,
    QboValidationError,
    classify,
    error_from_fault,
    error_from_response,
    parse_retry_after,
    read_response,
)


def qbo_fault(code: str, message: str = "A message", detail: str = "A detail", element: str = "") -> bytes:
    body = {
        "Fault": {
            "Error": [{"Message": message, "Detail": detail, "code": code, "element": element}],
            "type": "ValidationFault",
        },
        "time": "2017-09-29T09:17:31.892-07:00",
    }
    return json.dumps(body).encode()


GATEWAY_401 = json.dumps(
    {
        "warnings": None,
        "intuitObject": None,
        "fault": {
            "error": [
                {
                    "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                    "detail": "Token expired: AB11...",
                    "code": "3200",
                    "element": None,
                }
            ],
            "type": "AUTHENTICATION",
        },
        "report": None,
        "queryResponse": None,
        "batchItemResponse": [],
        "attachableResponse": [],
        "syncErrorResponse": None,
        "requestId": None,
        "time": 1633520295688,
        "status": None,
        "cdcresponse": [],
    }
).encode()

GATEWAY_403 = json.dumps(
    {
        "fault": {
            "error": [
                {
                    "message": "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                    "detail": None,
                    "code": "3100",
                    "element": None,
                }
            ],
            "type": "SERVICE",
        },
        "time": 1633520295688,
    }
).encode()

XML_401 = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="2015-07-24T10:48:27.082-07:00">'
    b'<Fault type="AuthenticationFault"><Error code="100"><Message>General Authentication Error</Message>'
    b"<Detail>AuthenticationErrorGeneral: SRV-110-Authentication Failure , statusCode: 401</Detail>"
    b"</Error></Fault></IntuitResponse>"
)

XML_429 = (
    b'<Fault type="SERVICE"><Error code="3001"><Message>message=ThrottleExceeded; errorCode=003001; '
    b"statusCode=429</Message><Detail>The request limit was reached.  Try again later</Detail></Error></Fault>"
)

HTML_502 = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>Bad Gateway</h1><p>The proxy server received an invalid response.</p></body></html>"
)
HTML_503 = b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"

JSON = {"content-type": "application/json"}

CASES = [
    # (id, status, headers, body, expected class, expected code)
    ("6240 duplicate name", 400, JSON, qbo_fault("6240", "Duplicate Name Exists Error"), QboDuplicateNameError, "6240"),
    ("6140 duplicate docnum", 400, JSON, qbo_fault("6140", "Duplicate Doc Num"), QboDuplicateDocNumberError, "6140"),
    ("5010 stale object", 400, JSON, qbo_fault("5010", "Stale Object Error"), QboStaleObjectError, "5010"),
    ("610 not found is HTTP 400", 400, JSON, qbo_fault("610", "Object Not Found"), QboNotFoundError, "610"),
    ("404 without body", 404, {}, b"", QboNotFoundError, None),
    ("2020 required param", 400, JSON, qbo_fault("2020"), QboValidationError, "2020"),
    ("2500 invalid reference", 400, JSON, qbo_fault("2500"), QboValidationError, "2500"),
    ("2050 string length", 400, JSON, qbo_fault("2050", detail="Min:0 Max:500 supported"), QboValidationError, "2050"),
    ("2170 invalid enumeration", 400, JSON, qbo_fault("2170"), QboValidationError, "2170"),
    ("2210 bad email", 400, JSON, qbo_fault("2210"), QboValidationError, "2210"),
    ("4000 query parse", 400, JSON, qbo_fault("4000", "Error parsing query"), QboValidationError, "4000"),
    ("4001 invalid query", 400, JSON, qbo_fault("4001"), QboValidationError, "4001"),
    ("4002 query", 400, JSON, qbo_fault("4002"), QboValidationError, "4002"),
    ("6000 business validation", 400, JSON, qbo_fault("6000"), QboValidationError, "6000"),
    ("6070 amount mismatch", 400, JSON, qbo_fault("6070"), QboValidationError, "6070"),
    ("6200 period closed", 400, JSON, qbo_fault("6200"), QboValidationError, "6200"),
    ("6210 period closed", 400, JSON, qbo_fault("6210"), QboValidationError, "6210"),
    ("6540 deposited txn", 400, JSON, qbo_fault("6540"), QboValidationError, "6540"),
    ("1040 batch too large", 400, JSON, qbo_fault("1040"), QboValidationError, "1040"),
    ("500 unsupported operation code", 400, JSON, qbo_fault("500", "Unsupported Operation"), QboValidationError, "500"),
    ("600 duplicate request id", 400, JSON, qbo_fault("600"), QboValidationError, "600"),
    ("620 cannot be linked", 400, JSON, qbo_fault("620"), QboValidationError, "620"),
    ("10100 result too big", 400, JSON, qbo_fault("10100"), QboValidationError, "10100"),
    ("unknown code on 400", 400, JSON, qbo_fault("9999"), QboValidationError, "9999"),
    ("gateway 401 3200 lowercase", 401, JSON, GATEWAY_401, QboAuthenticationError, "3200"),
    ("xml 401 code 100", 401, {"content-type": "application/xml"}, XML_401, QboAuthenticationError, "100"),
    ("401 without body", 401, {}, b"", QboAuthenticationError, None),
    ("403 3100 forbidden", 403, JSON, GATEWAY_403, QboForbiddenError, "3100"),
    ("3100 with 500 is server", 500, JSON, qbo_fault("3100", "InternalServerError"), QboServerError, "3100"),
    ("120 authorization failure", 400, JSON, qbo_fault("120", "Authorization Failure"), QboForbiddenError, "120"),
    ("120 with 500 is server", 500, JSON, qbo_fault("120"), QboServerError, "120"),
    ("429 xml throttle", 429, {"content-type": "text/xml"}, XML_429, QboThrottledError, "3001"),
    ("429 without body", 429, {}, b"", QboThrottledError, None),
    ("3001 on a 400", 400, JSON, qbo_fault("3001"), QboThrottledError, "3001"),
    ("10000 system fault", 500, JSON, qbo_fault("10000", "An application error has occurred"), QboServerError, "10000"),
    ("10000 with 400", 400, JSON, qbo_fault("10000"), QboServerError, "10000"),
    ("502 html", 502, {"content-type": "text/html"}, HTML_502, QboServerError, None),
    ("503 html", 503, {"content-type": "text/html"}, HTML_503, QboServerError, None),
    ("504 empty", 504, {}, b"", QboServerError, None),
    ("fault with http 200 (6190)", 200, JSON, qbo_fault("6190", "Subscription ended"), QboForbiddenError, "6190"),
    ("fault with http 200 (6240)", 200, JSON, qbo_fault("6240"), QboDuplicateNameError, "6240"),
    ("200 with html body", 200, {"content-type": "text/html"}, b"<html>maintenance</html>", QboApiError, None),
    ("unknown status and code", 409, JSON, qbo_fault("7777"), QboApiError, "7777"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_response_maps_to_error_class(
    status: int, headers: dict[str, str], body: bytes, expected: type, code: str | None
) -> None:
    error = error_from_response(status, {**headers, "intuit_tid": "1-abc"}, body)
    assert type(error) is expected
    assert error is not None
    assert error.code == code
    assert error.status == status
    assert error.intuit_tid == "1-abc"


def test_success_body_is_not_an_error() -> None:
    body = json.dumps({"Customer": {"Id": "1"}, "time": "2024-01-01T00:00:00-08:00"}).encode()
    assert error_from_response(200, JSON, body) is None
    assert read_response(200, JSON, body)["Customer"] == {"Id": "1"}


def test_read_response_raises_the_mapped_error() -> None:
    with pytest.raises(QboStaleObjectError) as info:
        read_response(400, JSON, qbo_fault("5010", "Stale Object Error", "You and Jo were working on this"))
    assert info.value.message == "Stale Object Error"
    assert info.value.detail == "You and Jo were working on this"


def test_fields_of_a_validation_fault_are_carried() -> None:
    error = error_from_response(
        400, {"intuit_tid": "9-xyz"}, qbo_fault("2050", "String length", "Min:0 Max:500", "DisplayName")
    )
    assert isinstance(error, QboValidationError)
    assert (error.message, error.detail, error.element, error.fault_type) == (
        "String length",
        "Min:0 Max:500",
        "DisplayName",
        "ValidationFault",
    )
    assert "code=2050" in str(error)
    assert "9-xyz" in str(error)


def test_html_body_becomes_readable_detail_without_markup() -> None:
    error = error_from_response(502, {}, HTML_502)
    assert error is not None
    assert error.detail is not None
    assert "Bad Gateway" in error.detail
    assert "<" not in error.detail


def test_code_only_inside_the_gateway_message_is_extracted() -> None:
    body = json.dumps({"fault": {"error": [{"message": "message=X; errorCode=003001; statusCode=429"}]}}).encode()
    error = error_from_response(429, {}, body)
    assert isinstance(error, QboThrottledError)
    assert error.code == "3001"


def test_retry_after_header_is_read_on_throttle() -> None:
    error = error_from_response(429, {"retry-after": "7"}, XML_429)
    assert isinstance(error, QboThrottledError)
    assert error.retry_after == 7.0
    assert error.retryable


def test_xml_with_a_doctype_is_not_parsed() -> None:
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
        b'<Fault><Error code="6240"><Message>&a;</Message></Error></Fault>'
    )
    error = error_from_response(400, {}, evil)
    assert type(error) is QboValidationError  # classified by status; the body's code was not trusted
    assert error is not None
    assert error.code is None


def test_retryable_flags_follow_the_taxonomy() -> None:
    assert QboThrottledError.retryable
    assert QboServerError.retryable
    for cls in (QboAuthenticationError, QboForbiddenError, QboStaleObjectError, QboDuplicateNameError,
                QboDuplicateDocNumberError, QboValidationError, QboNotFoundError, QboApiError):  # fmt: skip
        assert not cls.retryable, cls


def test_batch_item_fault_without_status_uses_the_same_table() -> None:
    fault = {"Error": [{"Message": "Stale", "code": "5010"}], "type": "ValidationFault"}
    assert isinstance(error_from_fault(fault), QboStaleObjectError)
    assert classify(None, "6240") is QboDuplicateNameError
    assert classify(None, "3100") is QboForbiddenError
    assert classify(None, "12345") is QboApiError


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("12", 12.0), ("soon", None), ("Wed, 01 May 2024 10:00:30 GMT", 30.0)],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == expected


def test_long_details_are_cut() -> None:
    error = error_from_response(400, {}, qbo_fault("6000", detail="x" * 5000))
    assert error is not None
    assert error.detail is not None
    assert len(error.detail) == 500
