"""Parsing every clause and operator of QBO's query language into a validated ``Query``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from qbo_emulator.query import (
    Condition,
    FieldKind,
    Operator,
    ParseOptions,
    Query,
    QueryError,
    equality_lookups,
    parse_query,
)


def only_condition(query: Query) -> Condition:
    assert len(query.where) == 1
    return query.where[0]


def test_select_star_has_qbo_defaults() -> None:
    query = parse_query("SELECT * FROM Customer")

    assert query.entity == "Customer"
    assert query.count_only is False
    assert query.projection == ("*",)
    assert query.full_rows is True
    assert query.where == ()
    assert query.order_by == ()
    assert query.start_position == 1
    assert query.max_results == 100


def test_keywords_are_case_insensitive() -> None:
    query = parse_query(
        "SeLeCt * FrOm Customer wHeRe Active = TRUE aNd Balance > '0' OrDeRbY DisplayName DeSc "
        "StartPosition 3 MaxResults 7"
    )

    assert [(c.field, c.op) for c in query.where] == [("Active", Operator.EQ), ("Balance", Operator.GT)]
    assert query.order_by == (("DisplayName", True),)
    assert (query.start_position, query.max_results) == (3, 7)


def test_order_by_with_a_space_is_accepted_like_orderby() -> None:
    # python-quickbooks' ListMixin.all() sends "ORDER BY"; QBO's parser lists both "order" and "orderby".
    assert parse_query("select * from Invoice ORDER BY TxnDate DESC").order_by == (("TxnDate", True),)
    assert parse_query("select * from Invoice orderby TxnDate desc").order_by == (("TxnDate", True),)


def test_orderby_takes_several_fields_each_with_its_own_direction() -> None:
    query = parse_query("select * from Invoice orderby TxnDate desc, DocNumber, Id asc")

    assert query.order_by == (("TxnDate", True), ("DocNumber", False), ("Id", False))


def test_paging_clauses_may_come_in_either_order() -> None:
    query = parse_query("select * from Customer maxresults 10 startposition 21")

    assert (query.start_position, query.max_results) == (21, 10)


def test_a_repeated_clause_is_a_parse_error() -> None:
    with pytest.raises(QueryError) as caught:
        parse_query("select * from Customer maxresults 5 maxresults 6")

    assert caught.value.code == "4000"
    assert 'Encountered " "maxresults" "maxresults "" at line 1, column 37.' in caught.value.detail


def test_count_star_is_count_only_with_no_projection() -> None:
    query = parse_query("select count(*) from Invoice where Balance > '0'")

    assert query.count_only is True
    assert query.projection == ()
    assert only_condition(query).field == "Balance"


def test_star_with_extra_fields_still_selects_whole_rows() -> None:
    # python-quickbooks 0.9.12 sends "SELECT *, Sku FROM Item" to get Sku back.
    query = parse_query("SELECT *, Sku FROM Item")

    assert query.projection == ("*", "Sku")
    assert query.full_rows is True


def test_an_explicit_projection_lists_its_fields() -> None:
    query = parse_query("select Id, DisplayName from Customer")

    assert query.projection == ("Id", "DisplayName")
    assert query.full_rows is False


@pytest.mark.parametrize(
    ("text", "op"),
    [
        ("Balance = '5'", Operator.EQ),
        ("Balance < '5'", Operator.LT),
        ("Balance > '5'", Operator.GT),
        ("Balance <= '5'", Operator.LE),
        ("Balance >= '5'", Operator.GE),
        ("Balance in ('5')", Operator.IN),
    ],
)
def test_each_comparison_operator(text: str, op: Operator) -> None:
    condition = only_condition(parse_query(f"select * from Customer where {text}"))

    assert condition.op is op
    assert condition.operands == (Decimal(5),)


def test_operators_need_no_surrounding_spaces() -> None:
    query = parse_query("select * from Customer where Balance>='1' and Balance<=2 and DisplayName='x'")

    assert [c.op for c in query.where] == [Operator.GE, Operator.LE, Operator.EQ]


def test_like_keeps_the_pattern_text() -> None:
    condition = only_condition(parse_query("select * from Customer where DisplayName like '%Smith%'"))

    assert condition.op is Operator.LIKE
    assert condition.value == "%Smith%"


def test_in_lists_keep_every_value_in_order() -> None:
    condition = only_condition(parse_query("select * from Invoice where DocNumber IN ('1001','1002', 1003)"))

    assert condition.values == ("1001", "1002", Decimal(1003))
    assert condition.operands == ("1001", "1002", "1003")


def test_active_in_true_false_parses_as_boolean_operands() -> None:
    condition = only_condition(parse_query("select * from Customer where Active IN (true, false)"))

    assert condition.values == (True, False)


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("'12.50'", Decimal("12.50")),
        ("12.50", Decimal("12.50")),
        ("-3", Decimal(-3)),
        ("-0.75", Decimal("-0.75")),
        ("0", Decimal(0)),
    ],
)
def test_numbers_quoted_or_bare_become_decimals_for_amount_properties(literal: str, expected: Decimal) -> None:
    condition = only_condition(parse_query(f"select * from Invoice where TotalAmt = {literal}"))

    assert condition.operands == (expected,)
    assert isinstance(condition.operands[0], Decimal)


@pytest.mark.parametrize(("literal", "expected"), [("true", True), ("FALSE", False), ("'true'", True)])
def test_booleans(literal: str, expected: bool) -> None:
    assert only_condition(parse_query(f"select * from Customer where Active = {literal}")).operands == (expected,)


def test_python_style_capitalised_booleans_parse() -> None:
    # python-quickbooks' filter(Active=True) formats the Python bool: "Active = True".
    assert only_condition(parse_query("SELECT * FROM Customer WHERE Active = True")).operands == (True,)


def test_dates_and_datetimes_are_typed_by_the_property() -> None:
    due = only_condition(parse_query("select * from Invoice where DueDate < '2024-01-31'"))
    updated = only_condition(
        parse_query("select * from Invoice where MetaData.LastUpdatedTime >= '2024-01-31T10:00:00-08:00'")
    )

    assert due.operands == (date(2024, 1, 31),)
    assert due.kind is FieldKind.DATE
    assert updated.operands == (datetime(2024, 1, 31, 10, tzinfo=timezone(timedelta(hours=-8))),)
    assert updated.operands[0] == datetime(2024, 1, 31, 18, tzinfo=UTC)


def test_numbers_compared_with_text_properties_keep_their_digits() -> None:
    condition = only_condition(parse_query("select * from Invoice where DocNumber = 001"))

    assert condition.operands == ("001",)


def test_refs_and_emails_resolve_to_their_inner_value() -> None:
    ref = only_condition(parse_query("select * from Invoice where CustomerRef = '3'"))
    email = only_condition(parse_query("select * from Customer where PrimaryEmailAddr = 'a@b.com'"))

    assert ref.prop.path == ("CustomerRef", "value")
    assert email.prop.path == ("PrimaryEmailAddr", "Address")


def test_property_names_match_case_insensitively_and_come_back_canonical() -> None:
    # Production clients send "Metadata.LastUpdatedTime" (lower-case d) and QBO answers.
    query = parse_query("select * from Customer where Metadata.LastUpdatedTime > '2024-01-01' orderby displayname")

    assert only_condition(query).field == "MetaData.LastUpdatedTime"
    assert query.order_by == (("DisplayName", False),)


def test_property_case_sensitivity_is_an_option() -> None:
    with pytest.raises(QueryError) as caught:
        parse_query("select * from Customer where displayname = 'x'", ParseOptions(property_case_sensitive=True))

    assert caught.value.code == "4001"
    assert caught.value.detail == "QueryValidationError: property 'displayname' is not queryable"


def test_entity_names_are_case_sensitive_by_default() -> None:
    with pytest.raises(QueryError) as caught:
        parse_query("select * from customer")

    assert caught.value.code == "4001"
    assert caught.value.message == "Invalid query"
    assert caught.value.detail == "QueryValidationError: Entity customer not found"


def test_entity_case_sensitivity_can_be_turned_off() -> None:
    query = parse_query("select * from creditMemo", ParseOptions(entity_case_sensitive=False))

    assert query.entity == "CreditMemo"


@pytest.mark.parametrize(
    "entity",
    [
        "Customer",
        "Invoice",
        "Item",
        "Payment",
        "CreditMemo",
        "RefundReceipt",
        "Vendor",
        "Employee",
        "Account",
        "Term",
        "TaxCode",
        "TaxRate",
        "CompanyInfo",
        "Preferences",
        "Bill",
    ],
)
def test_every_emulated_entity_is_queryable(entity: str) -> None:
    assert parse_query(f"select * from {entity} where Id = '1'").entity == entity


@pytest.mark.parametrize(
    ("entity", "condition"),
    [
        ("Item", "Name = 'Widget'"),
        ("Item", "Sku = 'W-1'"),
        ("Item", "Type = 'Service'"),
        ("Item", "Active = false"),
        ("Invoice", "DocNumber = '1001'"),
        ("Invoice", "TxnDate = '2024-01-31'"),
        ("Invoice", "DueDate < '2024-01-31'"),
        ("Invoice", "CustomerRef = '3'"),
        ("Invoice", "SalesTermRef = '2'"),
        ("Invoice", "Balance > '0'"),
        ("Customer", "GivenName = 'Ann'"),
        ("Customer", "FamilyName = 'Lee'"),
        ("Customer", "CompanyName = 'Acme'"),
        ("Customer", "PrimaryEmailAddr = 'a@b.com'"),
        ("Customer", "MetaData.CreateTime > '2024-01-01'"),
    ],
)
def test_documented_filterable_properties_are_accepted(entity: str, condition: str) -> None:
    query = parse_query(f"select * from {entity} where {condition}")

    assert query.entity == entity
    assert only_condition(query).field == condition.split(" ")[0]


def test_a_multi_line_query_parses() -> None:
    query = parse_query("SELECT *\n  FROM Invoice\r\n\tWHERE Balance > '0'\n  MAXRESULTS 5\n")

    assert query.max_results == 5


def test_maxresults_up_to_1000_is_allowed() -> None:
    assert parse_query("select * from Customer maxresults 1000").max_results == 1000


def test_repeated_parses_share_one_cached_query() -> None:
    text = "select * from Customer where DisplayName = 'cached'"

    assert parse_query(text) is parse_query(text)
    assert parse_query(text, ParseOptions(entity_case_sensitive=False)) == parse_query(text)


def test_equality_lookups_expose_indexable_conditions() -> None:
    query = parse_query(
        "select * from Invoice where DocNumber = 'X-1' and Balance > '0' and Id = 5 and CustomerRef = '7'"
    )

    assert equality_lookups(query) == [("DocNumber", "X-1"), ("Id", "5"), ("CustomerRef", "7")]


def test_query_objects_are_immutable() -> None:
    query = parse_query("select * from Customer")
    attribute: Any = "entity"

    with pytest.raises(AttributeError):
        setattr(query, attribute, "Invoice")
