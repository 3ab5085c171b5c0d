"""Money arithmetic: Decimal inside, JSON numbers outside.

QBO amounts are 2-decimal numbers in JSON (``337.5``, ``448.4``). Computing with floats would make the
emulator's own rounding wrong in exactly the cases its tax rule is meant to expose, so every amount is turned
into a ``Decimal`` from its text form, rounded explicitly, and converted back only when stored.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Final

__all__ = ["CENT", "ZERO", "as_number", "dec", "round_cents"]

CENT: Final = Decimal("0.01")
ZERO: Final = Decimal(0)


def dec(value: object, default: Decimal = ZERO) -> Decimal:
    """A Decimal from a JSON number or numeric string; ``default`` for absent or unparsable values."""
    if value is None or value == "" or isinstance(value, bool):
        return default
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return default


def round_cents(value: Decimal) -> Decimal:
    """Half-up to the cent, the rounding QBO applies to amounts (UNCERTAIN: see ``FidelityConfig``)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def as_number(value: Decimal) -> float | int:
    """The JSON form: an int when whole (``100``), else a float (``337.5``), as QBO prints them."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)
