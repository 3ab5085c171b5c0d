"""Portal payments and refunds: how much, by what method, with which processor reference.

Batchly's customer portal takes cards through Stripe (and ACH), so references look like Stripe ids. Amounts are
either the whole open amount or a realistic part of it (a quarter, a half, an odd sum), always at least a cent and
never more than what is open.
"""

from __future__ import annotations

import random
import string
from decimal import ROUND_DOWN, Decimal
from typing import Final, Literal

__all__ = ["CENT", "PaymentMethod", "choose_amount", "choose_method", "processor_reference"]

CENT: Final = Decimal("0.01")
PaymentMethod = Literal["credit_card", "ach", "check", "cash", "other"]

_PORTAL_METHODS: Final[tuple[PaymentMethod, ...]] = ("credit_card", "ach")
_PORTAL_WEIGHTS: Final = (8, 2)
_ALPHABET: Final = string.ascii_letters + string.digits


def choose_method(rng: random.Random) -> PaymentMethod:
    return rng.choices(_PORTAL_METHODS, _PORTAL_WEIGHTS)[0]


def processor_reference(rng: random.Random, method: PaymentMethod, *, refund: bool = False) -> str:
    prefix = "re" if refund else ("ch" if method == "credit_card" else "py")
    number = rng.getrandbits(143)  # 62**24 > 2**142: 24 base-62 digits, like a Stripe id
    digits = []
    for _ in range(24):
        number, digit = divmod(number, 62)
        digits.append(_ALPHABET[digit])
    return f"{prefix}_" + "".join(digits)


def choose_amount(rng: random.Random, open_amount: Decimal, *, full_share: float) -> Decimal:
    """The whole ``open_amount`` with probability ``full_share``, otherwise a part of it in [0.01, open - 0.01]."""
    if open_amount < CENT:
        raise ValueError("nothing is open")
    if open_amount < 2 * CENT or rng.random() < full_share:
        return open_amount
    fraction = rng.choice((Decimal("0.25"), Decimal("0.5"), Decimal("0.75"), None))
    if fraction is None:
        cents = int(open_amount / CENT)
        return CENT * rng.randint(1, cents - 1)
    part = (open_amount * fraction).quantize(CENT, rounding=ROUND_DOWN)
    return min(max(part, CENT), open_amount - CENT)
