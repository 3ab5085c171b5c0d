"""Webhook signatures (both payload formats) and normalisation of both formats into one event shape."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from qbsync.qbo.webhooks import (
    WebhookEvent,
    WebhookPayloadError,
    parse_webhook,
    sign_webhook,
    verify_webhook_signature,
)

VERIFIER = "qbsync-dev-verifier"

LEGACY = json.dumps(
    {
        "eventNotifications": [
            {
                "realmId": "1185883450",
                "dataChangeEvent": {
                    "entities": [
                        {
                            "name": "Customer",
                            "id": "1",
                            "operation": "Create",
                            "lastUpdated": "2015-10-05T14:42:19-0700",
                        },
                        {
                            "name": "Customer",
                            "id": "9",
                            "operation": "Merge",
                            "lastUpdated": "2015-10-05T14:42:19-0700",
                            "deletedId": "7",
                        },
                    ]
                },
            }
        ]
    }
).encode()

CLOUD = json.dumps(
    [
        {
            "specversion": "1.0",
            "id": "88cd52-ab1",
            "source": "intuit.dsnBgbseACLLRZNxo2dfc4evmEJdxde58xeeYcZliOU=",
            "type": "qbo.creditmemo.voided.v1",
            "datacontenttype": "application/json",
            "time": "2025-09-10T21:31:25.179Z",
            "intuitentityid": "1234",
            "intuitaccountid": "310687",
            "data": {},
        }
    ]
).encode()


def intuit_signature(body: bytes, key: str) -> str:
    """Computed here independently of the module: base64(HMAC-SHA256(key, body))."""
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


@pytest.mark.parametrize("body", [LEGACY, CLOUD], ids=["legacy", "cloudevents"])
def test_signature_of_either_format_verifies_and_tampering_fails(body: bytes) -> None:
    signature = intuit_signature(body, VERIFIER)
    assert sign_webhook(body, VERIFIER) == signature
    assert verify_webhook_signature(body, signature, VERIFIER)
    assert not verify_webhook_signature(body + b" ", signature, VERIFIER)
    assert not verify_webhook_signature(body, signature, "other-verifier")
    assert not verify_webhook_signature(body, None, VERIFIER)
    assert not verify_webhook_signature(body, "not base64!!", VERIFIER)
    assert not verify_webhook_signature(body, signature, "")


def test_legacy_payload_is_normalised() -> None:
    assert parse_webhook(LEGACY) == [
        WebhookEvent("1185883450", "Customer", "1", "Create", "2015-10-05T14:42:19-0700"),
        WebhookEvent("1185883450", "Customer", "9", "Merge", "2015-10-05T14:42:19-0700", deleted_id="7"),
    ]


def test_cloudevents_payload_is_normalised() -> None:
    assert parse_webhook(CLOUD) == [
        WebhookEvent("310687", "CreditMemo", "1234", "Void", "2025-09-10T21:31:25.179Z", event_id="88cd52-ab1")
    ]


@pytest.mark.parametrize(
    "body",
    [b"not json", b"{}", b'{"eventNotifications": [{"realmId": "1"}]}', b'[{"type": "x.y"}]', b"[1]"],
)
def test_malformed_payloads_are_rejected(body: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        parse_webhook(body)
