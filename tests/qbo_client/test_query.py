"""The query builder escapes every value so that no value can change a query's structure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qbsync.qbo import QboQuery

# ------------------------------------------------------------------------------ a reference lexer for QBO's syntax

Token = tuple[str, str]


def lex(text: str) -> list[Token]:
    """QBO's lexical rules as the facts describe them: '...' strings where a backslash escapes the next character;
    words; numbers; operators and punctuation. Raises on an unterminated string."""
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "'":
            i, value = _string(text, i + 1)
            tokens.append(("string", value))
        elif text.startswith(("<=", ">="), i):
            tokens.append(("op", text[i : i + 2]))
            i += 2
        elif ch in "=<>(),*":
            tokens.append(("op", ch))
            i += 1
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in "=<>(),*'":
                i += 1
            if start == i:
                raise ValueError(f"unexpected character {ch!r}")
            tokens.append(("word", text[start:i]))
    return tokens


def _string(text: str, i: int) -> tuple[int, str]:
    out = []
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text):
                raise ValueError("dangling escape")
            out.append(text[i + 1])
            i += 2
        elif ch == "'":
            return i + 1, "".join(out)
        else:
            out.append(ch)
            i += 1
    raise ValueError("unterminated string")


# ------------------------------------------------------------------------------ rendering


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("O'Brien", r"'O\'Brien'"),
        ("C:\\path", r"'C:\\path'"),
        ("\\'", r"'\\\''"),
        ("x' OR Id > '0", r"'x\' OR Id > \'0'"),
        ("Zoë \u2013 東京", "'Zoë \u2013 東京'"),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (-7, "-7"),
        (Decimal("1234.50"), "1234.50"),
        (Decimal("1E+3"), "1000"),
        (date(2024, 1, 31), "'2024-01-31'"),
        (datetime(2024, 1, 31, 10, 0, tzinfo=timezone(timedelta(hours=-8))), "'2024-01-31T10:00:00-08:00'"),
    ],
)
def test_values_are_rendered_as_qbo_literals(value: object, rendered: str) -> None:
    query = QboQuery.select("Customer").where("DisplayName", "=", value)  # type: ignore[arg-type]
    assert str(query) == f"SELECT * FROM Customer WHERE DisplayName = {rendered}"


def test_the_documented_example() -> None:
    query = QboQuery.select("Customer").where("DisplayName", "=", "O'Brien")
    assert query.render() == "SELECT * FROM Customer WHERE DisplayName = 'O\\'Brien'"


def test_full_query_with_all_clauses() -> None:
    query = (
        QboQuery.select("Invoice")
        .where("MetaData.LastUpdatedTime", ">=", datetime(2024, 5, 1, tzinfo=UTC))
        .where("DocNumber", "IN", ["A-1", "B'2"])
        .where("CustomerRef", "=", "58")
        .order_by("MetaData.LastUpdatedTime", descending=True)
        .order_by("Id")
        .start_position(1001)
        .max_results(1000)
    )
    assert query.render() == (
        "SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime >= '2024-05-01T00:00:00+00:00' "
        "AND DocNumber IN ('A-1', 'B\\'2') AND CustomerRef = '58' "
        "ORDERBY MetaData.LastUpdatedTime DESC, Id STARTPOSITION 1001 MAXRESULTS 1000"
    )


def test_like_and_count() -> None:
    query = QboQuery.select("Item").where("Name", "like", "Wid%").order_by("Name").max_results(10)
    assert query.render() == "SELECT * FROM Item WHERE Name LIKE 'Wid%' ORDERBY Name MAXRESULTS 10"
    assert query.count().render() == "SELECT COUNT(*) FROM Item WHERE Name LIKE 'Wid%'"


def test_queries_are_immutable() -> None:
    base = QboQuery.select("Customer")
    narrowed = base.where("Active", "=", False)
    assert base.render() == "SELECT * FROM Customer"
    assert narrowed.render() == "SELECT * FROM Customer WHERE Active = false"


@pytest.mark.parametrize(
    "build",
    [
        lambda: QboQuery.select("Customer; DROP"),
        lambda: QboQuery.select("customer x"),
        lambda: QboQuery.select("Customer").where("DisplayName = 'a' OR Id", "=", "b"),
        lambda: QboQuery.select("Customer").where("Id", "OR", "1"),  # type: ignore[arg-type]
        lambda: QboQuery.select("Customer").where("Id", "!=", "1"),  # type: ignore[arg-type]
        lambda: QboQuery.select("Customer").where("Balance", ">", 1.5),  # type: ignore[arg-type]
        lambda: QboQuery.select("Customer").where("Id", "IN", []),
        lambda: QboQuery.select("Customer").where("Id", "IN", "123"),
        lambda: QboQuery.select("Customer").where("Id", "=", ["1"]),
        lambda: QboQuery.select("Customer").where("Name", "LIKE", 5),
        lambda: QboQuery.select("Customer").where("Balance", ">", Decimal("NaN")),
        lambda: QboQuery.select("Customer").where("MetaData.CreateTime", ">", datetime(2024, 1, 1)),
        lambda: QboQuery.select("Customer").order_by("Id DESC, Name"),
        lambda: QboQuery.select("Customer").max_results(1001),
        lambda: QboQuery.select("Customer").max_results(0),
        lambda: QboQuery.select("Customer").start_position(0),
    ],
)
def test_structure_cannot_be_smuggled_in_through_names_operators_or_values(build: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        build()  # type: ignore[operator]


# ------------------------------------------------------------------------------ properties

any_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=600)


@given(any_text)
def test_any_string_round_trips_and_cannot_change_the_structure(value: str) -> None:
    query = QboQuery.select("Customer").where("DisplayName", "=", value).where("Active", "=", True).order_by("Id")
    tokens = lex(query.render())
    assert tokens == [
        ("word", "SELECT"), ("op", "*"), ("word", "FROM"), ("word", "Customer"), ("word", "WHERE"),
        ("word", "DisplayName"), ("op", "="), ("string", value),
        ("word", "AND"), ("word", "Active"), ("op", "="), ("word", "true"), ("word", "ORDERBY"), ("word", "Id"),
    ]  # fmt: skip


@given(st.lists(any_text, min_size=1, max_size=5))
def test_in_lists_round_trip(values: list[str]) -> None:
    tokens = lex(QboQuery.select("Invoice").where("DocNumber", "IN", values).render())
    strings = [text for kind, text in tokens if kind == "string"]
    assert strings == values
    assert tokens[:7] == [
        ("word", "SELECT"), ("op", "*"), ("word", "FROM"), ("word", "Invoice"), ("word", "WHERE"),
        ("word", "DocNumber"), ("word", "IN"),
    ]  # fmt: skip
    assert tokens[-1] == ("op", ")")
