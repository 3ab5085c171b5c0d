"""Customer snapshots: ordinary, hard (valid but awkward for QuickBooks) and invalid (opt-in, for validation tests).

A customer's case is fixed when it is created and kept by every later rename or e-mail change, so an apostrophe
customer stays an apostrophe customer across its history and an invalid one stays invalid.

* hard cases: apostrophes (straight and typographic), non-ASCII (accents, CJK, Greek, Cyrillic, Hebrew, Arabic,
  emoji), a display name of exactly QuickBooks' 500-character limit, e-mail addresses with ``+tags``;
* invalid cases (QuickBooks rejects them, pre-sync validation must catch them): a display name that is empty after
  trimming, a ``:`` in the display name (QuickBooks' sub-customer separator), a malformed e-mail address, a display
  name over the 500-character limit.
"""

from __future__ import annotations

import random
from collections.abc import Callable, MutableSet
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal, assert_never
from uuid import UUID

from qbsync.contracts.batchly import CustomerPayload
from qbsync.simulate import names
from qbsync.simulate.names import City

__all__ = [
    "HARD_CASES",
    "INVALID_CASES",
    "QBO_DISPLAY_NAME_MAX",
    "CustomerCase",
    "CustomerChange",
    "Identity",
    "change_customer",
    "new_customer",
    "pick_case",
]

#: QuickBooks' DisplayName limit.
QBO_DISPLAY_NAME_MAX: Final = 500


class CustomerCase(StrEnum):
    ORDINARY = "ordinary"
    APOSTROPHE = "apostrophe"
    UNICODE = "unicode"
    MAX_LENGTH = "max_length"
    PLUS_EMAIL = "plus_email"
    BLANK_NAME = "blank_name"
    COLON_NAME = "colon_name"
    BAD_EMAIL = "bad_email"
    TOO_LONG_NAME = "too_long_name"

    @property
    def is_hard(self) -> bool:
        return self in HARD_CASES

    @property
    def is_invalid(self) -> bool:
        return self in INVALID_CASES


HARD_CASES: Final = (CustomerCase.APOSTROPHE, CustomerCase.UNICODE, CustomerCase.MAX_LENGTH, CustomerCase.PLUS_EMAIL)
INVALID_CASES: Final = (
    CustomerCase.BLANK_NAME,
    CustomerCase.COLON_NAME,
    CustomerCase.BAD_EMAIL,
    CustomerCase.TOO_LONG_NAME,
)

CustomerChange = Literal["phone", "email", "address", "rename", "notes", "deactivate", "reactivate"]
_ACTIVE_CHANGES: Final[tuple[CustomerChange, ...]] = ("phone", "email", "address", "rename", "notes", "deactivate")
_ACTIVE_WEIGHTS: Final = (22, 20, 22, 10, 8, 10)

_APOSTROPHE_SURNAMES: Final = (
    "O'Brien", "O'Connor", "D'Angelo", "O'Neil", "D'Souza", "O'Malley", "O'Hara", "D'Amico", "L'Heureux", "O'Reilly",
)  # fmt: skip
_APOSTROPHE_TRADES: Final = ("Bakery", "Diner", "Pub", "Deli", "Kitchen", "Corner Market", "Catering", "Cafe")
_UNICODE_BUSINESSES: Final = (
    "Café Zoë", "Müller GmbH", "Crème & Crumb Pâtisserie", "Señora Peña Taquería", "Smørrebrød Kitchen",
    "Łódź Pierogi House", "Ærø Bakehouse", "Çelik Kebap Evi", "Phở Nguyễn", "Bánh Mì Saigon", "Ōsaka Ramen Bar",
    "Zürich Konditorei", "São Paulo Churrascaria", "Fräulein Brötchen Bäckerei", "Jalapeño & Limón Cocina",
    "Brasserie Élise", "Kaffe Ångström", "東京ラーメン", "北京烤鸭餐厅", "李记面馆", "서울 바베큐", "台北牛肉麵",
    "大阪たこ焼き", "上海小笼包", "부산 횟집", "Ελληνικό Καφενείο", "Пекарня Москва", "מאפיית תל אביב",
    "مطعم الأندلس", "Bean There ☕ Café", "Taco 🌮 Cantina", "Sweet 🍩 Spot",
)  # fmt: skip
_UNICODE_PEOPLE: Final = (
    ("Zoë", "Müller"), ("Renée", "Peña"), ("José", "Gómez"), ("François", "Brontë"), ("Søren", "Ångström"),
    ("Björn", "Öztürk"), ("Łukasz", "Dvořák"), ("Chloé", "Nguyễn"), ("Inés", "Šimić"), ("Jürgen", "Çelik"),
    ("太郎", "山田"), ("伟", "王"), ("민준", "김"),
)  # fmt: skip
_FILLER: Final = (
    "Wholesale", "Catering", "Division", "Northwest", "Regional", "Operations", "Accounts Payable", "Commissary",
    "Central Kitchen", "Events", "Procurement", "Holdings", "Hospitality Group", "Downtown", "Airport Concessions",
)  # fmt: skip
_BRANCHES: Final = ("Downtown", "Airport", "West", "Store 2", "Commissary", "Events")
_BLANKS: Final = ("", " ", "   ", "\t", " \n ")
_EMAIL_ROLES: Final = ("ap", "billing", "orders", "accounts", "info", "office")
_EMAIL_TAGS: Final = ("invoices", "ap", "billing", "qb", "batchly", "2025")
_TLDS: Final = ("com", "net", "org")


@dataclass(frozen=True, slots=True)
class Identity:
    display_name: str
    company_name: str | None = None
    given_name: str | None = None
    family_name: str | None = None


def pick_case(rng: random.Random, *, hard_share: float, invalid_share: float) -> CustomerCase:
    """Invalid with probability ``invalid_share``, hard with ``hard_share``, ordinary otherwise."""
    draw = rng.random()
    if draw < invalid_share:
        return rng.choice(INVALID_CASES)
    if draw < invalid_share + hard_share:
        return rng.choice(HARD_CASES)
    return CustomerCase.ORDINARY


def new_customer(
    rng: random.Random, customer_id: UUID, case: CustomerCase, city: City, taken: MutableSet[str]
) -> CustomerPayload:
    """A new customer's first snapshot. ``taken`` holds the organization's display names (case-folded); the new
    name is added to it, because QuickBooks display names are unique and an accidental duplicate would be noise."""
    identity = _unique_identity(rng, case, city, taken)
    return CustomerPayload.model_validate(
        {
            "customer_id": customer_id,
            "display_name": identity.display_name,
            "company_name": identity.company_name,
            "given_name": identity.given_name,
            "family_name": identity.family_name,
            "email": _email(rng, case, identity),
            "phone": names.phone_number(rng, city) if rng.random() < 0.9 else None,
            "billing_address": names.address(rng, city),
            "shipping_address": names.address(rng, city) if rng.random() < 0.25 else None,
            "notes": _note(rng) if rng.random() < 0.1 else None,
        }
    )


def change_customer(
    rng: random.Random,
    current: CustomerPayload,
    case: CustomerCase,
    move_to: Callable[[], City],
    taken: MutableSet[str],
    change: CustomerChange | None = None,
) -> tuple[CustomerPayload, CustomerChange]:
    """The next snapshot after one change (``change``, or a realistic one drawn at random: an inactive customer
    is usually reactivated)."""
    if change is None:
        change = _draw_change(rng, active=current.active)
    if change == "reactivate":
        return _with(current, active=True), change
    if change == "phone":
        return _with(current, phone=names.phone_number(rng, move_to())), change
    if change == "email":
        identity = Identity(current.display_name, current.company_name, current.given_name, current.family_name)
        return _with(current, email=_email(rng, case, identity, optional=False)), change
    if change == "address":
        return _with(current, billing_address=names.address(rng, move_to())), change
    if change == "rename":
        old = current.display_name.casefold()
        identity = _unique_identity(rng, case, move_to(), taken)
        taken.discard(old)
        fields = {"display_name": identity.display_name, "company_name": identity.company_name}
        if identity.given_name is not None:
            fields |= {"given_name": identity.given_name, "family_name": identity.family_name}
        return _with(current, **fields), change
    if change == "notes":
        return _with(current, notes=_note(rng)), change
    if change == "deactivate":
        return _with(current, active=False), change
    assert_never(change)


def _draw_change(rng: random.Random, *, active: bool) -> CustomerChange:
    if not active:
        return "reactivate" if rng.random() < 0.6 else rng.choice(_ACTIVE_CHANGES[:5])
    return rng.choices(_ACTIVE_CHANGES, _ACTIVE_WEIGHTS)[0]


def _with(current: CustomerPayload, **changes: object) -> CustomerPayload:
    # Re-validated (not model_copy) so a change can never produce a snapshot the contract would reject.
    return CustomerPayload.model_validate({**dict(current), **changes})


def _unique_identity(rng: random.Random, case: CustomerCase, city: City, taken: MutableSet[str]) -> Identity:
    identity = _identity(rng, case, city)
    if case is CustomerCase.BLANK_NAME:
        return identity
    for _ in range(5):
        if identity.display_name.casefold() not in taken:
            break
        identity = _identity(rng, case, city)
    name = identity.display_name
    number = 2
    while name.casefold() in taken:
        suffix = f" #{number}"
        limit = QBO_DISPLAY_NAME_MAX if case is CustomerCase.MAX_LENGTH else max(len(identity.display_name), 100)
        name = identity.display_name[: limit - len(suffix)] + suffix
        number += 1
    taken.add(name.casefold())
    return Identity(name, identity.company_name, identity.given_name, identity.family_name)


def _identity(rng: random.Random, case: CustomerCase, city: City) -> Identity:
    if case is CustomerCase.APOSTROPHE:
        return _apostrophe_identity(rng)
    if case is CustomerCase.UNICODE:
        return _unicode_identity(rng, city)
    if case is CustomerCase.MAX_LENGTH:
        return _long_identity(rng, city, QBO_DISPLAY_NAME_MAX)
    if case is CustomerCase.TOO_LONG_NAME:
        return _long_identity(rng, city, QBO_DISPLAY_NAME_MAX + rng.randint(1, 100))
    if case is CustomerCase.BLANK_NAME:
        return Identity(rng.choice(_BLANKS))
    if case is CustomerCase.COLON_NAME:
        name = f"{names.business_name(rng, city)}:{rng.choice(('', ' '))}{rng.choice(_BRANCHES)}"
        return Identity(name, company_name=name)
    return _ordinary_identity(rng, city)


def _ordinary_identity(rng: random.Random, city: City) -> Identity:
    given, family = names.person_name(rng)
    if rng.random() < 0.3:
        return Identity(f"{given} {family}", given_name=given, family_name=family)
    company = names.business_name(rng, city)
    if rng.random() < 0.6:
        return Identity(company, company, given, family)
    return Identity(company, company)


def _apostrophe_identity(rng: random.Random) -> Identity:
    surname = rng.choice(_APOSTROPHE_SURNAMES)
    given = rng.choice(names.FIRST_NAMES)
    pattern = rng.randrange(3)
    if pattern == 0:
        identity = Identity(f"{given} {surname}", given_name=given, family_name=surname)
    elif pattern == 1:
        name = f"{surname}'s {rng.choice(_APOSTROPHE_TRADES)}"
        identity = Identity(name, name)
    else:
        name = f"{given}'s {rng.choice(_APOSTROPHE_TRADES)}"
        identity = Identity(name, name, given, rng.choice(names.LAST_NAMES))
    if rng.random() < 0.15:  # the typographic apostrophe people paste from word processors
        return Identity(
            identity.display_name.replace("'", "\u2019"),
            _curly(identity.company_name),
            _curly(identity.given_name),
            _curly(identity.family_name),
        )
    return identity


def _unicode_identity(rng: random.Random, city: City) -> Identity:
    if rng.random() < 0.25:
        given, family = rng.choice(_UNICODE_PEOPLE)
        return Identity(f"{given} {family}", given_name=given, family_name=family)
    name = rng.choice(_UNICODE_BUSINESSES)
    if rng.random() < 0.5:
        name = f"{name} \u2013 {city.name}"
    return Identity(name, name)


def _long_identity(rng: random.Random, city: City, length: int) -> Identity:
    """An ASCII name of exactly ``length`` characters (so characters and UTF-16 units agree) without ``:``."""
    base = names.business_name(rng, city)
    words = [base, f"(Acct {rng.randrange(10**6):06d})"]
    while sum(len(w) + 1 for w in words) <= length:
        words.append(rng.choice(_FILLER))
    name = " ".join(words)[:length]
    if name.endswith(" "):
        name = name[:-1] + "X"
    return Identity(name, company_name=base[:100])


def _curly(text: str | None) -> str | None:
    return None if text is None else text.replace("'", "\u2019")


def _email(rng: random.Random, case: CustomerCase, identity: Identity, *, optional: bool = True) -> str | None:
    if optional and case is CustomerCase.ORDINARY and rng.random() < 0.05:
        return None
    local, domain = _mailbox(rng, identity)
    if case is CustomerCase.PLUS_EMAIL:
        return f"{local}+{rng.choice(_EMAIL_TAGS)}@{domain}"
    if case is CustomerCase.BAD_EMAIL:
        return rng.choice((f"{local}@@{domain}", f"{local}.{domain}", f"{local}@", f"@{domain}", f"{local} x@{domain}"))
    return f"{local}@{domain}"


def _mailbox(rng: random.Random, identity: Identity) -> tuple[str, str]:
    given = names.slug(identity.given_name or "", limit=20)
    family = names.slug(identity.family_name or "", limit=20)
    if identity.company_name:
        company = names.slug(identity.company_name) or f"customer-{rng.randrange(16**6):06x}"
        local = given if given and rng.random() < 0.3 else rng.choice(_EMAIL_ROLES)
        return local, f"{company}.example.com"
    if given and family:
        local = f"{given}.{family}" if rng.random() < 0.7 else f"{given[0]}{family}"
    else:
        local = f"customer{rng.randrange(10**5):05d}"
    return local, f"example.{rng.choice(_TLDS)}"


def _note(rng: random.Random) -> str:
    return rng.choice(
        (
            "Deliver to the back door before 7 AM.",
            f"Gate code {rng.randrange(10**4):04d}.",
            "Call on arrival; no deliveries on Sundays.",
            "Invoices go to the accounts payable inbox.",
            "Standing order; confirm holiday schedule in November.",
        )
    )
