"""Value types shared by every contract: money, rates, quantities, bounded text.

Money is ``Decimal`` with exactly two places on the wire (a JSON string such as ``"12.50"``; a JSON number with at
most two decimal places is accepted on input) — never a float. Amounts with more places are rejected, not rounded:
rounding is a business decision that belongs to Batchly, and silently rounding would hide a penny mismatch.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    Strict,
    StringConstraints,
    WithJsonSchema,
)

__all__ = [
    "CENT",
    "CountryCode",
    "CurrencyCode",
    "LongText",
    "Money",
    "NonNegativeMoney",
    "PositiveMoney",
    "Quantity",
    "Rate",
    "ShortText",
    "TaxPercent",
    "Text",
    "money",
]

CENT = Decimal("0.01")


def _decimal_input(value: Any) -> Any:
    """Accept a JSON string or number (or a Decimal in code); reject everything else, booleans included.

    A JSON number with a fraction reaches us as a float; its shortest repr is what the producer wrote (12.5 ->
    "12.5"), so ``Decimal(repr(x))`` keeps 0.1 as 0.1 instead of 0.1000000000000000055...
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError("must be a decimal number written as a JSON string or number")
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _quantize(places: Decimal) -> AfterValidator:
    def apply(value: Decimal) -> Decimal:
        if not value.is_finite():
            raise ValueError("must be a finite number")
        return value.quantize(places)

    return AfterValidator(apply)


def _as_string(value: Decimal) -> str:
    return format(value, "f")


_decimal_serializer = PlainSerializer(_as_string, return_type=str, when_used="json")


def _decimal_type(
    *,
    places: int,
    integer_digits: int,
    minimum: int | None = None,
    exclusive: bool = False,
    maximum: int | None = None,
) -> Any:
    """An Annotated Decimal: JSON string or number in, string out, with a JSON Schema other tools understand."""
    quantum = Decimal(1).scaleb(-places)
    sign = "" if minimum is not None and minimum >= 0 else "-?"
    pattern = rf"^{sign}[0-9]{{1,{integer_digits}}}(\.[0-9]{{1,{places}}})?$"
    number_schema: dict[str, Any] = {"type": "number"}
    if minimum is not None:
        number_schema["exclusiveMinimum" if exclusive else "minimum"] = minimum
    if maximum is not None:
        number_schema["maximum"] = maximum
    schema = {
        "anyOf": [{"type": "string", "pattern": pattern}, number_schema],
        "description": f"decimal with at most {places} places, serialized as a string",
    }
    constraints: dict[str, Any] = {"max_digits": integer_digits + places, "decimal_places": places}
    if minimum is not None:
        constraints["gt" if exclusive else "ge"] = minimum
    if maximum is not None:
        constraints["le"] = maximum
    return Annotated[
        Decimal,
        Strict(False),
        BeforeValidator(_decimal_input),
        Field(**constraints),
        _quantize(quantum) if places == 2 else AfterValidator(_finite),
        _decimal_serializer,
        WithJsonSchema(schema),
    ]


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    return value


#: An amount of money: at most 2 decimal places, at most 12 integer digits; serialized as a string "1234.50".
Money = _decimal_type(places=2, integer_digits=12)
NonNegativeMoney = _decimal_type(places=2, integer_digits=12, minimum=0)
PositiveMoney = _decimal_type(places=2, integer_digits=12, minimum=0, exclusive=True)
#: A unit price: money that may carry up to 5 decimal places (QuickBooks UnitPrice precision).
Rate = _decimal_type(places=5, integer_digits=12, minimum=0)
Quantity = _decimal_type(places=5, integer_digits=12, minimum=0)
#: A tax rate in percent, e.g. 8.875.
TaxPercent = _decimal_type(places=5, integer_digits=3, minimum=0, maximum=100)

# Bounded text. The caps reject absurd input at the contract edge; QuickBooks' tighter limits (500-character
# DisplayName, 21-character DocNumber, ...) are checked by the services' pre-sync validation so the failure can
# name the field and the limit.
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Text = Annotated[str, StringConstraints(max_length=1_000)]
LongText = Annotated[str, StringConstraints(max_length=10_000)]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
CountryCode = Annotated[str, StringConstraints(min_length=2, max_length=60)]


def money(value: str | int | Decimal) -> Decimal:
    """Build a money value in code (``money("12.5") == Decimal("12.50")``); raises on more than 2 places."""
    result = Decimal(value)
    if result != result.quantize(CENT):
        raise ValueError(f"{value!r} has more than 2 decimal places")
    return result.quantize(CENT)
