"""A deterministic generator of realistic Batchly events, for demos, tests and benchmarks.

    world = BatchlyWorld(seed=7, start=datetime(2025, 3, 3, 7, 0, tzinfo=UTC))
    org = world.add_organization(timezone="America/Chicago")
    events = [org, *world.new_customer_workflow(org.entity_id)]
    events += world.daily_workflow(org.entity_id, date(2025, 3, 4))
    events += world.mixed_stream([org.entity_id], 10_000)

Every event is a validated contract model (``qbsync.contracts.batchly``) that round-trips the codec. The catalog
(``DEFAULT_CATALOG``) is plain data shared with the QBO emulator's demo company.
"""

from qbsync.simulate.catalog import DEFAULT_CATALOG, CatalogItem
from qbsync.simulate.customers import HARD_CASES, INVALID_CASES, QBO_DISPLAY_NAME_MAX, CustomerCase
from qbsync.simulate.documents import TERMS, TaxChoice, item_id_for
from qbsync.simulate.generator import ROUNDING_FALLBACK_TAX, BatchlyWorld, NotEligible, WorldConfig
from qbsync.simulate.names import CITIES, City
from qbsync.simulate.pricing import Totals, document_totals, line_amount, per_line_tax, round_half_up, tax_on
from qbsync.simulate.streams import EntityKey, entity_key, latest_snapshot, shuffle_within_entity, with_redeliveries
from qbsync.simulate.workflows import DEFAULT_MIX, MIX_KINDS

__all__ = [
    "CITIES",
    "DEFAULT_CATALOG",
    "DEFAULT_MIX",
    "HARD_CASES",
    "INVALID_CASES",
    "MIX_KINDS",
    "QBO_DISPLAY_NAME_MAX",
    "ROUNDING_FALLBACK_TAX",
    "TERMS",
    "BatchlyWorld",
    "CatalogItem",
    "City",
    "CustomerCase",
    "EntityKey",
    "NotEligible",
    "TaxChoice",
    "Totals",
    "WorldConfig",
    "document_totals",
    "entity_key",
    "item_id_for",
    "latest_snapshot",
    "line_amount",
    "per_line_tax",
    "round_half_up",
    "shuffle_within_entity",
    "tax_on",
    "with_redeliveries",
]
