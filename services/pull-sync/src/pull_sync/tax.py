"""Sales tax, QuickBooks -> Batchly: a full refresh of tax rates and tax codes (neither is in the change feed).

Each run reads every rate and code (inactive ones too, to see deactivations), compares them with what was last
published, and publishes ``TaxRateChanged`` / ``TaxCodeChanged`` only for what is new, changed or deactivated.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from pull_sync import events, store
from pull_sync.deps import Deps
from pull_sync.feed import Summary, publish_batches
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.contracts.outbound import TaxCodeChanged, TaxCodeChangedPayload, TaxRateChanged, TaxRateChangedPayload
from qbsync.domain.pulls import Change, Published, plan_change, ref_of
from qbsync.domain.tax import TaxCodeView, TaxRateView, parse_tax_code, parse_tax_rate
from qbsync.qbo import QboCompany, QboNotFoundError, QboQuery

__all__ = ["TaxPull"]

log = logging.getLogger(__name__)

KIND = "tax"
TaxKind = Literal["rate", "code"]


@dataclass(frozen=True, slots=True)
class _Planned:
    kind: TaxKind
    qbo_id: str
    change: Change
    envelope: TaxRateChanged | TaxCodeChanged
    state: store.StoredState


class TaxPull:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def run(self, org: UUID, *, cause: AnyEnvelope | None) -> Summary:
        company = self.deps.qbo.company(org)
        async with self.deps.exclusive(org, KIND):
            summary = Summary(KIND, "full", "tax rates are not in the change feed")
            rate_rows = await _all(company, "TaxRate")
            code_rows = await _all(company, "TaxCode")
            agencies = await _agency_names(company, rate_rows)
            rates: dict[str, TaxRateView] = {}
            for row in rate_rows:
                rate = parse_tax_rate(row, agencies)
                if rate is None:
                    log.warning("tax rate %s of %s has no usable percentage; skipped", row.get("Id"), org)
                    summary.skipped += 1
                else:
                    rates[rate.qbo_id] = rate
            codes = [parse_tax_code(row, rates) for row in code_rows]
            summary.read = len(rate_rows) + len(code_rows)
            async with self.deps.db.connect() as conn:
                previous = {k: await store.object_states(conn, org, kind=k) for k in ("rate", "code")}
            now = datetime.now(UTC)
            planned = [
                *self._plan(org, "rate", rates.values(), previous["rate"], cause, now, _rate_payload),
                *self._plan(org, "code", codes, previous["code"], cause, now, _code_payload),
            ]
            summary.changes.update(p.change for p in planned)

            async def record(conn: AsyncConnection, batch: Sequence[_Planned]) -> None:
                for kind in ("rate", "code"):
                    states = {p.qbo_id: p.state for p in batch if p.kind == kind}
                    await store.save_object_states(conn, org, kind=kind, states=states, now=now)

            await publish_batches(self.deps, planned, lambda p: p.envelope, record)
            async with self.deps.db.transaction() as conn:  # the last sync time (no watermark: no change feed)
                await store.save_watermark(
                    conn, org, KIND, changed_since=now, full=True, summary=summary.text(), now=now
                )
            return summary

    def _plan(
        self,
        org: UUID,
        kind: TaxKind,
        views: Iterable[TaxRateView | TaxCodeView],
        previous: Mapping[str, store.StoredState],
        cause: AnyEnvelope | None,
        now: datetime,
        payload_of: Callable[[Any, Change], dict[str, Any]],
    ) -> list[_Planned]:
        planned: list[_Planned] = []
        present: set[str] = set()
        for view in views:
            present.add(view.qbo_id)
            before = previous.get(view.qbo_id)
            digest = view.fingerprint()
            change = plan_change(
                eligible=True,
                active=view.active,
                fingerprint=digest,
                previous=Published(before.fingerprint, before.active) if before else None,
                include_inactive=False,
            )
            if change is not None:
                planned.append(
                    self._event(org, kind, view.qbo_id, payload_of(view, change), digest, before, cause, now)
                )
        for qbo_id, before in sorted(previous.items()):
            if qbo_id not in present and before.active:  # gone from QuickBooks: deactivated once
                payload = {**before.payload, "change": "deactivated", "active": False}
                planned.append(
                    self._event(org, kind, qbo_id, payload, f"gone:{before.fingerprint}", before, cause, now)
                )
        return planned

    @staticmethod
    def _event(
        org: UUID,
        kind: TaxKind,
        qbo_id: str,
        payload: dict[str, Any],
        digest: str,
        before: store.StoredState | None,
        cause: AnyEnvelope | None,
        now: datetime,
    ) -> _Planned:
        version = events.next_version(before.version if before else None, now, now)
        raw = json.dumps(payload)
        envelope: TaxRateChanged | TaxCodeChanged
        if kind == "rate":
            rate = TaxRateChangedPayload.model_validate_json(raw)
            envelope = events.tax_rate_changed(org, rate, version=version, digest=digest, occurred_at=now, cause=cause)
        else:
            code = TaxCodeChangedPayload.model_validate_json(raw)
            envelope = events.tax_code_changed(org, code, version=version, digest=digest, occurred_at=now, cause=cause)
        active = bool(payload["active"])
        state = store.StoredState(digest, active, version, envelope.payload.model_dump(mode="json"))
        return _Planned(kind, qbo_id, payload["change"], envelope, state)


def _rate_payload(rate: TaxRateView, change: Change) -> dict[str, Any]:
    return {
        "change": change,
        "qbo_tax_rate_id": rate.qbo_id,
        "name": rate.name,
        "rate_percent": str(rate.rate_percent),
        "agency_name": rate.agency_name,
        "active": rate.active,
    }


def _code_payload(code: TaxCodeView, change: Change) -> dict[str, Any]:
    return {
        "change": change,
        "qbo_tax_code_id": code.qbo_id,
        "name": code.name,
        "taxable": code.taxable,
        "tax_rate_ids": list(code.rate_ids),
        "total_rate_percent": str(code.total_rate_percent) if code.total_rate_percent is not None else None,
        "active": code.active,
    }


async def _all(company: QboCompany, entity: str) -> list[dict[str, Any]]:
    query = QboQuery.select(entity).where("Active", "IN", [True, False]).order_by("Id")
    return [row async for row in company.query_all(query)]


async def _agency_names(company: QboCompany, rate_rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Names of the tax agencies rates refer to by Id only (read one by one: a company has a handful)."""
    refs = [ref_of(row.get("AgencyRef")) for row in rate_rows]
    names: dict[str, str] = {}
    for agency_id in sorted({agency_id for agency_id, name in refs if agency_id and not name}):
        try:
            agency = await company.read("TaxAgency", agency_id)
        except QboNotFoundError:
            continue
        if agency.get("DisplayName"):
            names[agency_id] = str(agency["DisplayName"])
    return names
