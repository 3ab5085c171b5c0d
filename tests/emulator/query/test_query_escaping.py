"""String literals: escaping round trips, injection attempts, unicode and long names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qbo_emulator.query import ExecuteOptions, Operator, QueryError, execute, parse_query

Row = dict[str, Any]
STRICT = ExecuteOptions(case_insensitive_strings=False)


def escape(value: str) -> str:
    """The standard escaping every client should apply: backslashes first, then apostrophes."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def by_name(value: str) -> str:
    return f"select * from Customer where DisplayName = '{escape(value)}'"


def names(rows: list[Row]) -> list[str]:
    return [row["DisplayName"] for row in rows]


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'O\\'Brien'", "O'Brien"),
        ("'C:\\\\path'", "C:\\path"),
        ("'\\\\\\''", "\\'"),
        ("''", ""),
        ("'it''s'", None),  # SQL-style doubling is not QBO's escape: two adjacent literals
        ("'tab\there'", "tab\there"),
        ("'line\nbreak'", "line\nbreak"),
        ("'100% sure'", "100% sure"),
        ("'C:\\path'", "C:\\path"),  # an unknown escape keeps its backslash (python-quickbooks sends these)
    ],
)
def test_string_literals_decode_backslash_escapes(literal: str, value: str | None) -> None:
    text = f"select * from Customer where DisplayName = {literal}"
    if value is None:
        with pytest.raises(QueryError):
            parse_query(text)
        return

    assert parse_query(text).where[0].value == value


@pytest.mark.parametrize(
    "hostile",
    [
        "x' OR Id > '0",
        "\\' AND Active = false",
        "' OR '1'='1",
        "a' maxresults 1000 --",
        "x'; delete from Customer",
        "\\",
        "\\\\'",
        "'",
        "name' and DisplayName like '%",
        "\u2019 OR 1=1",
    ],
)
def test_an_escaped_injection_attempt_stays_one_literal(make_customer: Callable[..., Row], hostile: str) -> None:
    rows = [make_customer(1, "victim"), make_customer(2, hostile), make_customer(3, "x"), make_customer(4, "")]

    query = parse_query(by_name(hostile))
    result = execute(query, rows)

    assert len(query.where) == 1
    assert query.where[0].op is Operator.EQ
    assert query.where[0].value == hostile
    assert query.max_results == 100
    assert names(result.rows) == [hostile]


def test_the_same_attempt_unescaped_is_rejected_not_run() -> None:
    with pytest.raises(QueryError) as caught:
        parse_query("select * from Customer where DisplayName = 'x' OR Id > '0'")

    assert caught.value.code == "4000"


def test_escaping_apostrophes_only_as_python_quickbooks_does_cannot_break_out(
    make_customer: Callable[..., Row],
) -> None:
    # python-quickbooks' build_where_clause escapes ' but not \, so "x\' OR ..." arrives as 'x\\' OR ...'.
    hostile = "x\\' OR Id > '0"
    naive = hostile.replace("'", "\\'")

    with pytest.raises(QueryError) as caught:
        parse_query(f"select * from Customer where DisplayName = '{naive}'")

    assert caught.value.code == "4000"


@pytest.mark.parametrize(
    "name",
    [
        "Café Ünïcödé",
        "日本語の会社",
        "Ελληνικά & Co.",
        "emoji 🚀 corp",
        "zero\u200bwidth",
        "\uff21\uff43\uff4d\uff45",  # full-width "Acme"
        "x" * 500,
        "O'Brien " * 62 + "end",
        "ß" * 250,
    ],
)
def test_unicode_and_long_names_round_trip(make_customer: Callable[..., Row], name: str) -> None:
    rows = [make_customer(1, name), make_customer(2, name + " "), make_customer(3, "other")]

    result = execute(parse_query(by_name(name)), rows, STRICT)

    assert names(result.rows) == [name]


def test_a_500_character_name_matches_by_like_prefix(make_customer: Callable[..., Row]) -> None:
    name = "Ω" + "a" * 499
    rows = [make_customer(1, name), make_customer(2, "a" * 500)]

    result = execute(parse_query(f"select * from Customer where DisplayName like '{escape(name[:250])}%'"), rows)

    assert names(result.rows) == [name]


_other_names = st.lists(st.text(max_size=12), max_size=6)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.text(max_size=60), others=_other_names)
def test_escaped_names_match_exactly_the_rows_with_that_name(
    make_customer: Callable[..., Row], target: str, others: list[str]
) -> None:
    candidates = [target, target + "'", "\\" + target, target.upper(), *others]
    rows = [make_customer(index, name) for index, name in enumerate(candidates, start=1)]

    query = parse_query(by_name(target))
    result = execute(query, rows, ExecuteOptions(case_insensitive_strings=False, active_filter_entities=frozenset()))

    assert query.where[0].value == target
    assert names(result.rows) == [name for name in candidates if name == target]


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.text(max_size=40), others=_other_names)
def test_by_default_escaped_names_match_ignoring_case(
    make_customer: Callable[..., Row], target: str, others: list[str]
) -> None:
    candidates = [target, target.swapcase(), target + "x", *others]
    rows = [make_customer(index, name) for index, name in enumerate(candidates, start=1)]

    result = execute(parse_query(by_name(target)), rows)

    assert names(result.rows) == [name for name in candidates if name.casefold() == target.casefold()]


@settings(max_examples=200)
@given(values=st.lists(st.text(max_size=20), min_size=1, max_size=5))
def test_escaped_in_lists_keep_every_value(values: list[str]) -> None:
    listed = ", ".join(f"'{escape(value)}'" for value in values)

    condition = parse_query(f"select * from Customer where DisplayName in ({listed})").where[0]

    assert condition.op is Operator.IN
    assert list(condition.values) == values


@settings(max_examples=300)
@given(text=st.text(max_size=80))
def test_any_text_either_parses_or_raises_a_query_error(text: str) -> None:
    failure: QueryError | None = None
    try:
        parse_query(f"select * from Customer where DisplayName = {text}")
    except QueryError as error:
        failure = error
    if failure is not None:
        assert failure.code in {"4000", "4001"}
        assert failure.detail.startswith(("QueryParserError: ", "QueryValidationError: "))
