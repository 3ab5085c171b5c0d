"""Running queries over stored QBO rows: typed comparisons, ordering, paging, counting, projection."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qbo_emulator.query import ExecuteOptions, QueryResult, execute, parse_query

Row = dict[str, Any]


def run(text: str, rows: list[Row], options: ExecuteOptions | None = None) -> QueryResult:
    query = parse_query(text)
    return execute(query, rows) if options is None else execute(query, rows, options)


def ids(result: QueryResult) -> list[str]:
    return [row["Id"] for row in result.rows]


@pytest.fixture
def invoices(make_invoice: Callable[..., Row]) -> list[Row]:
    return [
        make_invoice(1, 3, TxnDate="2024-01-10", DueDate="2024-02-09", TotalAmt=100.0, Balance=0),
        make_invoice(2, 3, TxnDate="2024-01-31", DueDate="2024-03-01", TotalAmt=250.5, Balance=250.5),
        make_invoice(10, 4, TxnDate="2024-02-01", DueDate="2024-03-02", TotalAmt=12.5, Balance=12.5),
        make_invoice(
            11,
            5,
            TxnDate="2023-12-31",
            TotalAmt=99.99,
            Balance=50,
            MetaData={"CreateTime": "2023-12-31T23:30:00-08:00", "LastUpdatedTime": "2024-01-31T23:30:00-08:00"},
        ),
    ]


def test_refs_compare_their_value(invoices: list[Row]) -> None:
    assert ids(run("select * from Invoice where CustomerRef = '3'", invoices)) == ["1", "2"]
    assert ids(run("select * from Invoice where CustomerRef IN ('4', '5')", invoices)) == ["10", "11"]
    assert ids(run("select * from Invoice where CustomerRef = 4", invoices)) == ["10"]


def test_ids_compare_numerically(invoices: list[Row]) -> None:
    assert ids(run("select * from Invoice where Id > '9'", invoices)) == ["10", "11"]
    assert ids(run("select * from Invoice where Id <= '2'", invoices)) == ["1", "2"]
    assert ids(run("select * from Invoice where Id = 10", invoices)) == ["10"]


def test_amounts_compare_as_numbers_whether_quoted_or_not(invoices: list[Row]) -> None:
    assert ids(run("select * from Invoice where Balance > '0'", invoices)) == ["2", "10", "11"]
    assert ids(run("select * from Invoice where TotalAmt >= 99.99", invoices)) == ["1", "2", "11"]
    assert ids(run("select * from Invoice where TotalAmt = '12.50'", invoices)) == ["10"]
    assert ids(run("select * from Invoice where Balance < -1", invoices)) == []


def test_dates_compare_as_dates(invoices: list[Row]) -> None:
    january = "select * from Invoice where TxnDate >= '2024-01-01' and TxnDate <= '2024-01-31'"

    assert ids(run(january, invoices)) == ["1", "2"]
    assert ids(run("select * from Invoice where TxnDate < '2024-01-01'", invoices)) == ["11"]


def test_a_datetime_literal_against_a_date_property_uses_its_date(invoices: list[Row]) -> None:
    assert ids(run("select * from Invoice where TxnDate = '2024-01-31T22:00:00-08:00'", invoices)) == ["2"]


def test_a_row_without_the_property_matches_no_comparison(invoices: list[Row]) -> None:
    # Invoice 11 has no DueDate.
    assert ids(run("select * from Invoice where DueDate > '2000-01-01'", invoices)) == ["1", "2", "10"]
    assert ids(run("select * from Invoice where DueDate < '2100-01-01'", invoices)) == ["1", "2", "10"]


def test_datetimes_compare_across_offsets(invoices: list[Row]) -> None:
    # Invoice 11 changed at 2024-01-31T23:30-08:00, i.e. 2024-02-01T07:30Z; the others on 2024-01-15 at 10:00-08:00.
    after = "select * from Invoice where MetaData.LastUpdatedTime > '2024-02-01T07:00:00Z'"
    before = "select * from Invoice where MetaData.LastUpdatedTime < '2024-02-01T08:00:00+00:00'"

    assert ids(run(after, invoices)) == ["11"]
    assert ids(run(before, invoices)) == ["1", "2", "10", "11"]


def test_a_date_against_a_datetime_property_compares_the_rows_own_calendar_day(invoices: list[Row]) -> None:
    on_the_day = "select * from Invoice where MetaData.LastUpdatedTime = '2024-01-31'"
    since = "select * from Invoice where MetaData.LastUpdatedTime >= '2024-01-16'"

    assert ids(run(on_the_day, invoices)) == ["11"]
    assert ids(run(since, invoices)) == ["11"]


def test_naive_datetimes_take_the_configured_zone(invoices: list[Row]) -> None:
    # Invoice 11 changed at 2024-02-01T07:30Z. 23:45 naive is 23:45Z in UTC but 07:45Z in Pacific time.
    text = "select * from Invoice where MetaData.LastUpdatedTime > '2024-01-31T23:45:00'"
    pacific = ExecuteOptions(default_timezone=timezone(timedelta(hours=-8)))

    assert ids(run(text, invoices)) == ["11"]
    assert ids(run(text, invoices, pacific)) == []


def test_emails_compare_the_address_case_insensitively(make_customer: Callable[..., Row]) -> None:
    rows = [
        make_customer(1, "Ann", PrimaryEmailAddr={"Address": "Ann@Example.com"}),
        make_customer(2, "Bob"),
        make_customer(3, "Cy", PrimaryEmailAddr={"Address": "cy@example.com"}),
    ]

    assert ids(run("select * from Customer where PrimaryEmailAddr = 'ann@example.COM'", rows)) == ["1"]
    assert ids(run("select * from Customer where PrimaryEmailAddr like '%@example.com'", rows)) == ["1", "3"]


def test_strings_match_case_insensitively_by_default(make_customer: Callable[..., Row]) -> None:
    rows = [make_customer(1, "Acme Corp"), make_customer(2, "ACME CORP"), make_customer(3, "Acme Corp.")]

    assert ids(run("select * from Customer where DisplayName = 'acme corp'", rows)) == ["1", "2"]
    assert ids(run("select * from Customer where DisplayName in ('ACME corp.', 'x')", rows)) == ["3"]


def test_case_sensitive_strings_are_an_option(make_customer: Callable[..., Row]) -> None:
    rows = [make_customer(1, "Acme Corp"), make_customer(2, "ACME CORP")]
    strict = ExecuteOptions(case_insensitive_strings=False)

    assert ids(run("select * from Customer where DisplayName = 'ACME CORP'", rows, strict)) == ["2"]
    assert ids(run("select * from Customer where DisplayName like 'acme%'", rows, strict)) == []


def test_string_ranges_compare_text(make_customer: Callable[..., Row]) -> None:
    rows = [make_customer(1, "alpha"), make_customer(2, "Bravo"), make_customer(3, "charlie")]

    assert ids(run("select * from Customer where DisplayName >= 'b'", rows)) == ["2", "3"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("'%smith%'", ["1", "2", "4"]),
        ("'Smith%'", ["2"]),
        ("'%smith'", ["1", "4"]),
        ("'J_ne%'", ["5"]),
        ("'%.%'", ["5"]),
        ("'%'", ["1", "2", "3", "4", "5"]),
        ("'john smith'", ["1"]),
        ("'%x%'", []),
    ],
)
def test_like_supports_percent_and_treats_everything_else_literally(
    make_customer: Callable[..., Row], pattern: str, expected: list[str]
) -> None:
    rows = [
        make_customer(1, "John Smith"),
        make_customer(2, "Smithers Ltd"),
        make_customer(3, "Jane Doe"),
        make_customer(4, "Ann Goldsmith"),
        make_customer(5, "J_ne v1.0"),
    ]

    assert ids(run(f"select * from Customer where DisplayName like {pattern}", rows)) == expected


def test_like_percent_spans_newlines(make_customer: Callable[..., Row]) -> None:
    rows = [make_customer(1, "first\nsecond")]

    assert ids(run("select * from Customer where DisplayName like 'first%second'", rows)) == ["1"]


def test_conditions_are_anded(invoices: list[Row]) -> None:
    text = "select * from Invoice where CustomerRef = '3' and Balance > '0' and TxnDate >= '2024-01-01'"

    assert ids(run(text, invoices)) == ["2"]


def test_name_lists_return_only_active_rows_by_default(make_customer: Callable[..., Row]) -> None:
    rows = [make_customer(1, "A"), make_customer(2, "B", Active=False), make_customer(3, "C")]

    assert ids(run("select * from Customer", rows)) == ["1", "3"]
    assert run("select count(*) from Customer", rows).total_count == 2


def test_mentioning_active_lifts_the_active_only_default(make_customer: Callable[..., Row]) -> None:
    rows = [make_customer(1, "A"), make_customer(2, "B", Active=False), make_customer(3, "C")]

    assert ids(run("select * from Customer where Active IN (true, false)", rows)) == ["1", "2", "3"]
    assert ids(run("select * from Customer where Active = false", rows)) == ["2"]
    assert ids(run("select * from Customer where active = true", rows)) == ["1", "3"]


def test_the_active_only_entity_list_is_the_callers_choice(make_customer: Callable[..., Row]) -> None:
    rows = [make_customer(1, "A"), make_customer(2, "B", Active=False)]
    everything = ExecuteOptions(active_filter_entities=frozenset())

    assert ids(run("select * from Customer", rows, everything)) == ["1", "2"]


def test_transactions_are_not_active_filtered(invoices: list[Row]) -> None:
    invoices[0]["Active"] = False  # not a real Invoice field, but it must not hide the row

    assert len(run("select * from Invoice", invoices).rows) == 4


def test_rows_default_to_id_order_numerically(make_customer: Callable[..., Row]) -> None:
    rows = [make_customer(10, "x"), make_customer(2, "y"), make_customer(1, "z"), make_customer(33, "w")]

    assert ids(run("select * from Customer", rows)) == ["1", "2", "10", "33"]


def test_orderby_several_keys_with_mixed_directions(invoices: list[Row]) -> None:
    text = "select * from Invoice orderby CustomerRef desc, TotalAmt asc"

    assert ids(run(text, invoices)) == ["11", "10", "1", "2"]


def test_orderby_amounts_numerically_and_dates_chronologically(invoices: list[Row]) -> None:
    assert ids(run("select * from Invoice orderby TotalAmt", invoices)) == ["10", "11", "1", "2"]
    assert ids(run("select * from Invoice orderby TxnDate desc", invoices)) == ["10", "2", "1", "11"]


def test_orderby_datetimes_across_offsets(make_customer: Callable[..., Row]) -> None:
    def meta(updated: str) -> dict[str, str]:
        return {"CreateTime": updated, "LastUpdatedTime": updated}

    rows = [
        make_customer(1, "a", MetaData=meta("2024-01-01T10:00:00-08:00")),  # 18:00Z
        make_customer(2, "b", MetaData=meta("2024-01-01T17:00:00Z")),
        make_customer(3, "c", MetaData=meta("2024-01-01T19:00:00+01:00")),  # 18:00Z, ties with 1
    ]

    assert ids(run("select * from Customer orderby MetaData.LastUpdatedTime", rows)) == ["2", "1", "3"]


def test_orderby_text_ignores_case_and_breaks_ties_by_id(make_customer: Callable[..., Row]) -> None:
    rows = [make_customer(3, "beta"), make_customer(1, "Alpha"), make_customer(2, "BETA"), make_customer(4, "alpha")]

    assert ids(run("select * from Customer orderby DisplayName", rows)) == ["1", "4", "2", "3"]
    assert ids(run("select * from Customer orderby DisplayName desc", rows)) == ["2", "3", "1", "4"]


def test_missing_values_sort_first_ascending_and_last_descending(make_customer: Callable[..., Row]) -> None:
    rows = [make_customer(1, "a", CompanyName="M"), make_customer(2, "b"), make_customer(3, "c", CompanyName="A")]

    assert ids(run("select * from Customer orderby CompanyName", rows)) == ["2", "3", "1"]
    assert ids(run("select * from Customer orderby CompanyName desc", rows)) == ["1", "3", "2"]


def test_paging_is_one_based_and_applied_after_ordering(make_customer: Callable[..., Row]) -> None:
    rows = [make_customer(i, f"name {i:02d}") for i in range(1, 26)]

    page = run("select * from Customer orderby DisplayName desc startposition 3 maxresults 4", rows)

    assert ids(page) == ["23", "22", "21", "20"]
    assert (page.total_count, page.start_position, page.max_results) == (25, 3, 4)


def test_the_default_page_is_100_rows(make_customer: Callable[..., Row]) -> None:
    rows = [make_customer(i, f"n{i}") for i in range(1, 151)]

    result = run("select * from Customer", rows)

    assert ids(result) == [str(i) for i in range(1, 101)]
    assert result.total_count == 150


def test_a_page_past_the_end_is_empty(make_customer: Callable[..., Row]) -> None:
    rows = [make_customer(i, f"n{i}") for i in range(1, 6)]

    result = run("select * from Customer startposition 6", rows)

    assert result.rows == []
    assert result.total_count == 5
    assert result.to_query_response() == {}


def test_count_ignores_paging_and_returns_no_rows(invoices: list[Row]) -> None:
    result = run("select count(*) from Invoice where Balance > '0' startposition 2 maxresults 1", invoices)

    assert result.rows == []
    assert result.total_count == 3
    assert result.to_query_response() == {"totalCount": 3}


def test_the_query_response_has_qbo_shape(invoices: list[Row]) -> None:
    result = run("select * from Invoice startposition 2 maxresults 10", invoices)

    assert result.to_query_response() == {"Invoice": invoices[1:], "startPosition": 2, "maxResults": 3}


def test_select_star_returns_the_stored_rows_whole(make_customer: Callable[..., Row]) -> None:
    rows = [make_customer(1, "a", Notes="n")]

    assert run("select *, Sku from Customer", rows).rows[0] is rows[0]


def test_a_projection_returns_the_fields_asked_for_plus_id_and_sync_token(make_customer: Callable[..., Row]) -> None:
    rows = [make_customer(1, "Ann", CompanyName="Acme", Notes="secret")]

    result = run("select displayname, MetaData.CreateTime, Nope from Customer", rows)

    assert result.rows == [
        {"Id": "1", "SyncToken": "0", "DisplayName": "Ann", "MetaData": {"CreateTime": "2024-01-01T09:00:00-08:00"}}
    ]


def test_a_projection_never_writes_into_the_stored_row(make_customer: Callable[..., Row]) -> None:
    rows = [make_customer(1, "Ann")]
    before = copy.deepcopy(rows)

    result = run("select MetaData, MetaData.CreateTime, MetaData.LastUpdatedTime from Customer", rows)
    result.rows[0]["DisplayName"] = "changed"

    assert result.rows[0]["MetaData"] == rows[0]["MetaData"]
    assert rows == before


def test_projection_extras_are_configurable(make_customer: Callable[..., Row]) -> None:
    rows = [make_customer(1, "Ann")]

    result = run("select DisplayName from Customer", rows, ExecuteOptions(projection_always=()))

    assert result.rows == [{"DisplayName": "Ann"}]


def test_execution_accepts_any_iterable_of_rows(make_customer: Callable[..., Row]) -> None:
    rows = (make_customer(i, f"n{i}") for i in (3, 1, 2))

    assert ids(execute(parse_query("select * from Customer"), rows)) == ["1", "2", "3"]


def test_malformed_stored_values_match_nothing_instead_of_failing(make_customer: Callable[..., Row]) -> None:
    rows = [
        make_customer(1, "a", Balance="not a number"),
        make_customer(2, "b", Balance=None),
        make_customer(3, "c", Balance=True),
        make_customer(4, "d", Balance="7.5"),
        make_customer(5, 12345),
    ]

    assert ids(run("select * from Customer where Balance > '1'", rows)) == ["4"]
    assert ids(run("select * from Customer where DisplayName = '12345'", rows)) == ["5"]
    assert ids(run("select * from Customer orderby Balance desc", rows)) == ["4", "5", "1", "2", "3"]


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    balances=st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=0, max_size=40),
    start=st.integers(1, 45),
    size=st.integers(1, 45),
    descending=st.booleans(),
)
def test_any_page_is_the_matching_slice_of_the_full_ordering(
    make_customer: Callable[..., Row], balances: list[int | None], start: int, size: int, descending: bool
) -> None:
    rows = [make_customer(i, f"n{i % 7}", Balance=b) for i, b in enumerate(balances, start=1)]
    order = f"orderby Balance {'desc' if descending else 'asc'}, DisplayName"
    everything = run(f"select * from Customer {order} maxresults 1000", rows)

    page = run(f"select * from Customer {order} startposition {start} maxresults {size}", rows)

    assert ids(page) == ids(everything)[start - 1 : start - 1 + size]
    assert page.total_count == everything.total_count == len(rows)
