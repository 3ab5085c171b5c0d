"""Name, contact and address material: realistic US businesses and people, and the hard cases QuickBooks trips on.

Everything is drawn from the caller's ``random.Random``. Phone numbers use the 555-01XX block reserved for fiction
and e-mail addresses live under ``example.com``/``.net``/``.org``, so demo data never reaches a real person.
Ordinary names are plain ASCII without apostrophes; the hard cases (apostrophes, accents, CJK, emoji, right-to-left
text) come only from the dedicated pools below, so a test can tell them apart by looking at the payload.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from qbsync.contracts.batchly import Address

__all__ = [
    "CITIES",
    "City",
    "address",
    "business_name",
    "organization_name",
    "person_name",
    "phone_number",
    "slug",
]


@dataclass(frozen=True, slots=True)
class City:
    """A city customers and organizations live in, with its local sales-tax rate.

    The rates are representative combined rates (state + local) chosen to cover the cases that matter (7.25, 8.875,
    9.975, 10.1, a zero-tax state), not an authoritative tax table.
    """

    name: str
    region: str
    zip_prefix: str
    area_codes: tuple[str, ...]
    timezone: str
    tax_percent: Decimal

    @property
    def tax_rate_name(self) -> str:
        return f"{self.name}, {self.region}"


def _city(name: str, region: str, zip3: str, codes: str, tz: str, rate: str) -> City:
    return City(name, region, zip3, tuple(codes.split()), tz, Decimal(rate))


CITIES: Final[tuple[City, ...]] = (
    _city("San Francisco", "CA", "941", "415 628", "America/Los_Angeles", "8.625"),
    _city("Oakland", "CA", "946", "510 341", "America/Los_Angeles", "10.25"),
    _city("Sacramento", "CA", "958", "916 279", "America/Los_Angeles", "7.25"),
    _city("Los Angeles", "CA", "900", "213 323", "America/Los_Angeles", "9.975"),
    _city("Seattle", "WA", "981", "206", "America/Los_Angeles", "10.1"),
    _city("Portland", "OR", "972", "503 971", "America/Los_Angeles", "0"),
    _city("Phoenix", "AZ", "850", "602 480", "America/Phoenix", "8.6"),
    _city("Denver", "CO", "802", "303 720", "America/Denver", "8.81"),
    _city("Austin", "TX", "787", "512 737", "America/Chicago", "8.25"),
    _city("Chicago", "IL", "606", "312 773", "America/Chicago", "10.25"),
    _city("New York", "NY", "100", "212 646", "America/New_York", "8.875"),
    _city("Brooklyn", "NY", "112", "718 347", "America/New_York", "8.875"),
    _city("Boston", "MA", "021", "617 857", "America/New_York", "6.25"),
    _city("Miami", "FL", "331", "305 786", "America/New_York", "7"),
    _city("Atlanta", "GA", "303", "404 470", "America/New_York", "8.9"),
    _city("Anchorage", "AK", "995", "907", "America/Anchorage", "0"),
    _city("Honolulu", "HI", "968", "808", "Pacific/Honolulu", "4.712"),
)

FIRST_NAMES: Final = (
    "Maria", "James", "Aisha", "Wei", "Carlos", "Emily", "Priya", "Michael", "Fatima", "David", "Sofia", "Daniel",
    "Mei", "Jamal", "Olivia", "Hiroshi", "Grace", "Luis", "Hannah", "Kwame", "Isabella", "Ethan", "Ana", "Noah",
    "Leila", "Samuel", "Rosa", "Tyler", "Nadia", "Marcus", "Yuki", "Elena", "Omar", "Chloe", "Raj", "Jasmine",
    "Victor", "Lauren", "Thanh", "Gabriel", "Megan", "Andre", "Keiko", "Benjamin", "Lucia", "Kevin", "Amara", "Ryan"
)  # fmt: skip
LAST_NAMES: Final = (
    "Garcia", "Smith", "Nguyen", "Johnson", "Patel", "Williams", "Kim", "Brown", "Hernandez", "Jones", "Chen",
    "Miller", "Lopez", "Davis", "Okafor", "Wilson", "Martinez", "Anderson", "Tanaka", "Thomas", "Rodriguez",
    "Moore", "Singh", "Jackson", "Ramirez", "White", "Cohen", "Harris", "Rossi", "Clark", "Ali", "Lewis", "Walker",
    "Park", "Young", "Allen", "Silva", "King", "Wright", "Scott", "Torres", "Hill", "Flores", "Green", "Adams",
    "Baker"
)  # fmt: skip
_ADJECTIVES: Final = (
    "Blue", "Golden", "Copper", "Little", "Green", "Red", "Silver", "Old Town", "Rustic", "Urban", "Harbor",
    "Sunrise", "Maple", "Cedar", "Wild", "North Star", "Hilltop", "Riverside", "Corner", "Lucky"
)  # fmt: skip
_NOUNS: Final = (
    "Heron", "Oak", "Kettle", "Fox", "Lantern", "Sparrow", "Anchor", "Bluebird", "Fig", "Olive", "Pine", "Bean",
    "Whisk", "Spoon", "Ladle", "Hearth", "Crust", "Bee", "Mill", "Table"
)  # fmt: skip
_TRADES: Final = (
    "Bakery", "Cafe", "Bistro", "Catering", "Deli", "Grill", "Kitchen", "Market", "Coffee Roasters", "Pizzeria",
    "Taqueria", "Brewing Co.", "Tea House", "Juice Bar", "Diner", "Creamery", "Provisions", "Hotel", "Events",
    "Noodle Bar", "Food Truck", "Supper Club"
)  # fmt: skip
_SUFFIXES: Final = ("", "", "", "", " LLC", " Inc.", " Co.")
_LEGAL_SUFFIXES: Final = frozenset({"llc", "inc", "co"})
_ORG_TRADES: Final = (
    "Wholesale Bakery", "Foodservice", "Provisions", "Restaurant Supply", "Coffee Distributors", "Produce Co.",
    "Catering Supply", "Fine Foods"
)  # fmt: skip
_STREETS: Final = (
    "Main St", "Market St", "Oak Ave", "2nd Ave", "Mission St", "Broadway", "Elm St", "Park Ave", "Cedar Ln",
    "Lincoln Blvd", "Washington St", "Lake Shore Dr", "Pine St", "Sunset Blvd", "Harbor Way", "Industrial Pkwy",
    "Commerce Ct", "Grand Ave", "Maple Dr", "Valley Rd"
)  # fmt: skip
_LINE2: Final = ("Suite 100", "Suite 210", "Unit 4B", "Floor 3", "Bldg C", "Dock 2", "Rear entrance")


def person_name(rng: random.Random) -> tuple[str, str]:
    """(given name, family name)."""
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def business_name(rng: random.Random, city: City) -> str:
    """A plain-ASCII business name without apostrophes, e.g. "Copper Kettle Bistro" or "Patel & Kim Catering LLC"."""
    trade = rng.choice(_TRADES)
    pattern = rng.randrange(5)
    if pattern == 0:
        base = f"{rng.choice(LAST_NAMES)} {trade}"
    elif pattern == 1:
        base = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {trade}"
    elif pattern == 2:
        base = f"{city.name} {trade}"
    elif pattern == 3:
        base = f"{rng.choice(LAST_NAMES)} & {rng.choice(LAST_NAMES)} {trade}"
    else:
        base = f"The {rng.choice(_NOUNS)} {trade}"
    return base + rng.choice(_SUFFIXES)


def organization_name(rng: random.Random) -> str:
    """A Batchly tenant: a distributor, e.g. "Harbor Fig Foodservice"."""
    return f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {rng.choice(_ORG_TRADES)}"


def phone_number(rng: random.Random, city: City) -> str:
    """A fictional US number (555-01XX) in one of the formats people actually type."""
    area = rng.choice(city.area_codes)
    line = f"01{rng.randrange(100):02d}"
    style = rng.randrange(4)
    if style == 0:
        return f"({area}) 555-{line}"
    if style == 1:
        return f"{area}-555-{line}"
    if style == 2:
        return f"+1 {area} 555 {line}"
    return f"{area}.555.{line}"


def address(rng: random.Random, city: City) -> Address:
    line2 = rng.choice(_LINE2) if rng.random() < 0.3 else None
    return Address(
        line1=f"{rng.randint(10, 9999)} {rng.choice(_STREETS)}",
        line2=line2,
        city=city.name,
        region=city.region,
        postal_code=f"{city.zip_prefix}{rng.randrange(100):02d}",
        country="US",
    )


def slug(text: str, *, limit: int = 30) -> str:
    """ASCII, lower-case, hyphenated, without legal suffixes ("O'Brien's Bakery LLC" -> "obriens-bakery",
    "Café Zoë" -> "cafe-zoe"); empty when nothing ASCII is left (CJK)."""
    plain = text.replace("'", "").replace("\u2019", "")
    ascii_text = unicodedata.normalize("NFKD", plain).encode("ascii", "ignore").decode("ascii").lower()
    words = "".join(ch if ch.isalnum() else " " for ch in ascii_text).split()
    while len(words) > 1 and words[-1] in _LEGAL_SUFFIXES:
        words.pop()
    return "-".join(words)[:limit].strip("-")
