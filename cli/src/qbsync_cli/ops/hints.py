"""What a person should do about a failed sync: the seed's "Common Sync Errors" and "Troubleshooting Guide".

Handlers often attach their own hint to a failure (it is stored in the ledger and shown first). Otherwise the hint
comes from the error code, then from the error class. Each hint names the section of ``docs/troubleshooting.md``
that explains what the platform already did and what is left to the user.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Hint", "hint_for"]

_DOC = "docs/troubleshooting.md"


@dataclass(frozen=True, slots=True)
class Hint:
    text: str
    section: str

    @property
    def reference(self) -> str:
        return f"{_DOC}#{self.section}"


_CUSTOMER_EXISTS = Hint(
    "A QuickBooks name with this display name already exists (customers are linked by e-mail or name "
    "automatically; a vendor or employee with the name blocks it). Rename the customer in Batchly or the other "
    "name in QuickBooks, then retry.",
    "customer-already-exists-in-qb",
)
_ITEM_NOT_FOUND = Hint(
    "An item on this document is not in QuickBooks. Create the item in QuickBooks (or in Batchly and let it "
    "sync), run `qbsync sync items ORG`, then retry the invoice.",
    "item-not-found-in-qb",
)
_NUMBER_CONFLICT = Hint(
    "QuickBooks already holds this invoice number for another invoice. This should never happen: pull the QB "
    "invoices, check for gaps and reset Batchly's invoice counter to max(QB invoice #) + 1.",
    "invoice-number-conflict",
)
_TIMEOUT = Hint(
    "QuickBooks did not answer in time. The platform retried automatically (30 s, then 2 min); retry now or later.",
    "network-timeout",
)
_AUTH = Hint(
    "The QuickBooks connection is lost: reconnect QuickBooks for this organization (`qbsync connect ORG`). "
    "Parked work resumes by itself after the reconnect.",
    "qb-authentication-expired",
)
_CUSTOMER_NOT_SYNCED = Hint(
    "The invoice's customer is not in QuickBooks yet (must sync customer first). Check the customer's own sync "
    "in `qbsync failed`, fix it, then retry the invoice.",
    "invoice-sync-failed",
)
_CUSTOM_NUMBERS = Hint(
    "Custom transaction numbers are off in QuickBooks, so QB would renumber the invoice. Turn them on "
    "(Settings → Sales → Custom transaction numbers) and retry. `qbsync doctor ORG` checks the set-up.",
    "quickbooks-setup-requirements",
)
_ACCOUNT = Hint(
    "An item or refund needs an income (or deposit) account QuickBooks does not have. Ask the accountant to assign "
    "one (`qbsync doctor ORG` lists the items), then retry.",
    "quickbooks-setup-requirements",
)
_VALIDATION = Hint(
    "QuickBooks or the pre-sync validation refused the data (the message names the field). Correct it in Batchly; "
    "the corrected event syncs by itself, or retry this one.",
    "invoice-sync-failed",
)
_MALFORMED = Hint(
    "The record breaks the event contract (see docs/contracts.md): fix the producer and publish the event again. "
    "Replaying the same bytes cannot succeed.",
    "malformed-events",
)
_INTERNAL = Hint(
    "An unexpected error (a bug). It was retried automatically; after a fix is deployed, `qbsync retry` or "
    "`qbsync dlq replay` sends it again.",
    "dead-letters-growing",
)

_BY_CODE: dict[str, Hint] = {
    "6240": _CUSTOMER_EXISTS,
    "item_not_found": _ITEM_NOT_FOUND,
    "item_inactive": _ITEM_NOT_FOUND,
    "item_type_not_synced": _ITEM_NOT_FOUND,
    "refund_item_missing": _ITEM_NOT_FOUND,
    "610": _ITEM_NOT_FOUND,
    "6140": _NUMBER_CONFLICT,
    "timeout": _TIMEOUT,
    "transport": _TIMEOUT,
    "auth_lost": _AUTH,
    "3200": _AUTH,
    "customer_not_synced": _CUSTOMER_NOT_SYNCED,
    "custom_txn_numbers_off": _CUSTOM_NUMBERS,
    "account_missing": _ACCOUNT,
    "refund_account_missing": _ACCOUNT,
    "validation": _VALIDATION,
    "2050": _VALIDATION,
    "2020": _VALIDATION,
    "2210": _VALIDATION,
    "6000": _VALIDATION,
    "6070": _VALIDATION,
}
_BY_CLASS: dict[str, Hint] = {
    "transient": _TIMEOUT,
    "dependency": _CUSTOMER_NOT_SYNCED,
    "auth_lost": _AUTH,
    "permanent": _VALIDATION,
    "malformed": _MALFORMED,
    "internal": _INTERNAL,
}


def hint_for(error_class: str | None, error_code: str | None, handler_hint: str | None = None) -> Hint:
    """The hint for a failure: the handler's own, else by error code, else by error class."""
    known = _BY_CODE.get(error_code or "") or _BY_CLASS.get(error_class or "", _INTERNAL)
    if handler_hint:
        return Hint(handler_hint, known.section)
    return known
