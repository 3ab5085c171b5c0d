"""One company's data: entity rows with the indexes QBO's rules need, tombstones and Id sequences.

Rows are stored as the exact JSON QBO returns (``Id``, ``SyncToken``, ``MetaData``…), so a read is a lookup and
a serialisation. Indexes: Id (the dict key), DisplayName across Customer/Vendor/Employee, Name per other name
list, DocNumber per transaction type. Ids: transactions share one sequence (QBO's TxnIds are unique across
transaction types, which ``LinkedTxn`` relies on); each name list has its own.

Writes go through :class:`Company` methods only (``put`` / ``remove``) so indexes and the dirty set for the
state file never drift from the rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import tzinfo
from decimal import Decimal
from typing import Any

from qbo_emulator.clock import resolve_timezone
from qbo_emulator.entities import BY_NAME, NAME_UNIQUE_GROUP, EntitySpec

__all__ = ["Company", "CompanySettings", "Tombstone"]

Row = dict[str, Any]

_BALANCE_FIELD = {"Invoice": "Balance", "Payment": "UnappliedAmt", "CreditMemo": "RemainingCredit"}


@dataclass
class CompanySettings:
    """Company-level switches that are not (or not only) in ``Preferences``."""

    name: str
    country: str = "US"
    timezone: str = "America/Los_Angeles"
    state: str = "CA"
    duplicate_docnum_check: bool = True
    email: str = "owner@example.com"


@dataclass
class Tombstone:
    """What CDC reports for a deleted object."""

    entity: str
    id: str
    deleted_at: float
    last_updated: str


@dataclass
class Company:
    """A QBO company (realm) and its data."""

    realm_id: str
    settings: CompanySettings
    created_at: float
    tables: dict[str, dict[str, Row]] = field(default_factory=lambda: {name: {} for name in BY_NAME})
    tombstones: list[Tombstone] = field(default_factory=list)
    sequences: dict[str, int] = field(default_factory=dict)
    doc_sequences: dict[str, int] = field(default_factory=dict)
    updated_at: dict[str, dict[str, float]] = field(default_factory=lambda: {name: {} for name in BY_NAME})
    tax_regions: dict[str, str] = field(default_factory=dict)
    """US state code -> TaxCode Id that automated sales tax applies for a ship-to/bill-to in that state."""
    case_insensitive_names: bool = True
    dirty: set[tuple[str, str]] = field(default_factory=set, repr=False)
    _names: dict[str, tuple[str, str]] = field(default_factory=dict, init=False, repr=False)
    _docnumbers: dict[str, dict[str, set[str]]] = field(default_factory=dict, init=False, repr=False)

    @property
    def zone(self) -> tzinfo:
        return resolve_timezone(self.settings.timezone)

    # ------------------------------------------------------------------ ids
    def next_id(self, spec: EntitySpec) -> str:
        """The next Id for ``spec``: one shared sequence for transactions, one per other list."""
        return self.next_value("txn" if spec.kind == "txn" else spec.name)

    def next_value(self, key: str) -> str:
        """The next value of a named per-company sequence (Ids, address Ids)."""
        value = self.sequences.get(key, 0) + 1
        self.sequences[key] = value
        return str(value)

    def next_docnumber(self, entity: str) -> str:
        """The next free auto-assigned DocNumber for a transaction type (starts at 1001, skips used ones)."""
        value = self.doc_sequences.get(entity, 1000)
        while True:
            value += 1
            if not self.docnumber_holders(entity, str(value)):
                self.doc_sequences[entity] = value
                return str(value)

    # ------------------------------------------------------------------ rows
    def get(self, entity: str, row_id: str) -> Row | None:
        return self.tables[entity].get(row_id)

    def rows(self, entity: str) -> list[Row]:
        return list(self.tables[entity].values())

    def put(self, entity: str, row: Row, when: float) -> None:
        """Insert or replace a row, keeping every index (and the customer balances) in step."""
        table = self.tables[entity]
        old = table.get(row["Id"])
        if old is not None:
            self._unindex(entity, old)
            self._adjust_customer_balance(entity, old, -1)
        table[row["Id"]] = row
        self.updated_at[entity][row["Id"]] = when
        self._index(entity, row)
        self._adjust_customer_balance(entity, row, +1)
        self.dirty.add((entity, row["Id"]))

    def remove(self, entity: str, row_id: str, when: float, last_updated: str) -> Row | None:
        """Delete a row and leave a tombstone for CDC."""
        row = self.tables[entity].pop(row_id, None)
        if row is None:
            return None
        self.updated_at[entity].pop(row_id, None)
        self._unindex(entity, row)
        self._adjust_customer_balance(entity, row, -1)
        self.tombstones.append(Tombstone(entity, row_id, when, last_updated))
        self.dirty.add((entity, row_id))
        return row

    def _adjust_customer_balance(self, entity: str, row: Row, sign: int) -> None:
        """Keep ``Customer.Balance`` equal to open invoices minus unapplied payments and credits.

        Done here, on every put/remove of a transaction, because invoices also change as a side effect
        (payments applied, voids, deletes) and an incremental update keeps bulk loads linear.
        """
        field_name = _BALANCE_FIELD.get(entity)
        customer_id = (row.get("CustomerRef") or {}).get("value") if field_name else None
        customer = self.tables["Customer"].get(str(customer_id)) if customer_id is not None else None
        if customer is None or field_name is None:
            return
        amount = Decimal(str(row.get(field_name) or 0)) * (sign if entity == "Invoice" else -sign)
        for key in ("Balance", "BalanceWithJobs"):
            total = Decimal(str(customer.get(key) or 0)) + amount
            customer[key] = int(total) if total == total.to_integral_value() else float(total)
        self.dirty.add(("Customer", customer["Id"]))

    def prune_tombstones(self, older_than: float) -> None:
        self.tombstones = [t for t in self.tombstones if t.deleted_at >= older_than]

    # ------------------------------------------------------------------ indexes
    def name_key(self, entity: str, name: str) -> str:
        """The unique-name index key: one namespace for Customer/Vendor/Employee, one per other list."""
        group = "people" if entity in NAME_UNIQUE_GROUP else entity
        text = name.strip()
        return f"{group}\x00{text.casefold() if self.case_insensitive_names else text}"

    def name_holder(self, key: str) -> tuple[str, str] | None:
        """``(entity, Id)`` holding a unique name key (see :meth:`name_key`)."""
        return self._names.get(key)

    def docnumber_holders(self, entity: str, doc_number: str) -> set[str]:
        return self._docnumbers.get(entity, {}).get(doc_number, set())

    def _unique_name(self, entity: str, row: Row) -> str | None:
        if BY_NAME[entity].kind != "name":
            return None
        if entity in NAME_UNIQUE_GROUP or entity == "TaxAgency":
            value = row.get("DisplayName")
        else:
            value = row.get("FullyQualifiedName") or row.get("Name")
        return value if isinstance(value, str) and value else None

    def _index(self, entity: str, row: Row) -> None:
        name = self._unique_name(entity, row)
        if name is not None:
            self._names[self.name_key(entity, name)] = (entity, row["Id"])
        doc = row.get("DocNumber")
        if BY_NAME[entity].docnumber and isinstance(doc, str) and doc:
            self._docnumbers.setdefault(entity, {}).setdefault(doc, set()).add(row["Id"])

    def _unindex(self, entity: str, row: Row) -> None:
        name = self._unique_name(entity, row)
        if name is not None:
            key = self.name_key(entity, name)
            if self._names.get(key) == (entity, row["Id"]):
                del self._names[key]
        doc = row.get("DocNumber")
        if isinstance(doc, str) and doc:
            self._docnumbers.get(entity, {}).get(doc, set()).discard(row["Id"])

    def reindex(self) -> None:
        """Rebuild every index (after loading from the state file)."""
        self._names.clear()
        self._docnumbers.clear()
        for entity, table in self.tables.items():
            for row in table.values():
                self._index(entity, row)

    # ------------------------------------------------------------------ persistence
    def meta_snapshot(self) -> dict[str, Any]:
        """Everything except the rows: settings, sequences, tombstones and update stamps."""
        return {
            "realm_id": self.realm_id,
            "settings": asdict(self.settings),
            "created_at": self.created_at,
            "sequences": self.sequences,
            "doc_sequences": self.doc_sequences,
            "tombstones": [asdict(t) for t in self.tombstones],
            "tax_regions": self.tax_regions,
        }

    @classmethod
    def from_snapshot(
        cls, meta: dict[str, Any], rows: dict[str, list[tuple[Row, float]]], case_insensitive: bool
    ) -> Company:
        """Rebuild a company saved with :meth:`meta_snapshot` plus its rows and their update stamps."""
        company = cls(
            realm_id=meta["realm_id"],
            settings=CompanySettings(**meta["settings"]),
            created_at=float(meta["created_at"]),
            sequences=dict(meta["sequences"]),
            doc_sequences=dict(meta["doc_sequences"]),
            tombstones=[Tombstone(**t) for t in meta["tombstones"]],
            case_insensitive_names=case_insensitive,
            tax_regions=dict(meta.get("tax_regions", {})),
        )
        for entity, entity_rows in rows.items():
            company.tables.setdefault(entity, {}).update({r["Id"]: r for r, _ in entity_rows})
            company.updated_at.setdefault(entity, {}).update({r["Id"]: stamp for r, stamp in entity_rows})
        company.reindex()
        company.dirty.clear()
        return company
