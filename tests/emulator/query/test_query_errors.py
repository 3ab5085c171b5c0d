"""Every way a query fails, with QBO's codes, messages and detail texts."""

from __future__ import annotations

import pytest

from qbo_emulator.query import ParseOptions, QueryError, parse_query


def parse_failure(text: str, options: ParseOptions | None = None) -> QueryError:
    with pytest.raises(QueryError) as caught:
        parse_query(text) if options is None else parse_query(text, options)
    return caught.value


def test_an_unescaped_apostrophe_reproduces_qbos_own_parse_error() -> None:
    # node-quickbooks#56: QBO answered this query with code 4000 and exactly this location and token.
    error = parse_failure("select * from vendor where DisplayName = 'Cutlery 'R Us' startposition 1 maxresults 1000")

    assert error.code == "4000"
    assert error.message == "Error parsing query"
    assert error.detail.startswith(
        'QueryParserError: Encountered " <IDENTIFIER> "R "" at line 1, column 52.\n'
        "Was expecting one of:\n    <EOF> \n    <AND> ...\n"
    )
    assert error.detail.endswith('"startposition" ...\n    ')


def test_an_unterminated_string_is_a_lexical_error_quoting_the_text_read() -> None:
    error = parse_failure("select * from Customer where DisplayName = 'abc")

    assert error.code == "4000"
    assert error.detail == (
        'QueryParserError: Invalid content. Lexical error at line 1, column 47.  Encountered: <EOF> after : "\\\'abc"'
    )


def test_a_trailing_backslash_leaves_the_string_unterminated() -> None:
    error = parse_failure("select * from Customer where DisplayName = 'C:\\'")

    assert error.code == "4000"
    assert "Encountered: <EOF> after" in error.detail


def test_a_typographic_apostrophe_is_a_lexical_error() -> None:
    error = parse_failure("select * from Customer where DisplayName = \u2019Acme\u2019")

    assert error.code == "4000"
    assert error.detail == (
        "QueryParserError: Invalid content. Lexical error at line 1, column 44.  "
        'Encountered: "\\u2019" (8217), after : ""'
    )


def test_a_percent_sign_outside_a_string_is_a_lexical_error() -> None:
    # quickbooks-node-promise#1: QBO's text for a stray "%" (there from double URL-encoding).
    error = parse_failure("select * from Account where AccountSubType = %27Inventory%27")

    assert error.detail == (
        'QueryParserError: Invalid content. Lexical error at line 1, column 46.  Encountered: "%" (37), after : ""'
    )


def test_lexical_error_positions_count_lines_and_columns() -> None:
    error = parse_failure("select *\nfrom Customer\nwhere DisplayName = #")

    assert "Lexical error at line 3, column 21." in error.detail


def test_an_empty_query_expects_select() -> None:
    # consolibyte/quickbooks-php#129: QBO's answer to an empty query.
    error = parse_failure("")

    assert (
        error.detail
        == 'QueryParserError: Encountered "<EOF>" at line 0, column 0.\nWas expecting:\n    "select" ...\n    '
    )


def test_or_is_rejected_as_a_parse_error() -> None:
    error = parse_failure("select * from Customer where DisplayName = 'a' OR DisplayName = 'b'")

    assert error.code == "4000"
    assert error.detail.startswith('QueryParserError: Encountered " <OR> "OR "" at line 1, column 48.')


@pytest.mark.parametrize(
    ("text", "encountered"),
    [
        ("select Id from Customer group by Id", '" <IDENTIFIER> "group "" at line 1, column 25'),
        ("select * from Customer join Invoice", '" <IDENTIFIER> "join "" at line 1, column 24'),
        ("select * from Customer, Invoice", '" "," ", "" at line 1, column 23'),
        ("select * from Customer where Id in (select Id from Invoice)", '" "select" "select "" at line 1, column 37'),
        ("select * from Customer where upper(DisplayName) = 'X'", '" "(" "( "" at line 1, column 35'),
        ("select * from Customer where Balance != '0'", '"!" (33)'),
        ("select * from Customer where Balance <> '0'", '" ">" "> "" at line 1, column 39'),
        ("select * from Customer where DisplayName not like 'A%'", '" <IDENTIFIER> "not "" at line 1, column 42'),
        ("select * from Customer where DisplayName = Acme", '" <IDENTIFIER> "Acme "" at line 1, column 44'),
        ('select * from Customer where DisplayName = "Acme"', '"\\"" (34)'),
        ("select * from Customer where", '"<EOF>" at line 1, column 28'),
        ("select * from Customer maxresults 10.5", '" <DECIMAL> "10.5 "" at line 1, column 35'),
        ("select * from Customer maxresults '10'", '" <STRING> "\\\'10\\\' "" at line 1, column 35'),
        ("select count(*), Id from Customer", '" "," ", "" at line 1, column 16'),
        ("select * from Customer orderby", '"<EOF>" at line 1, column 30'),
        ("select * from Customer order DisplayName", '" <IDENTIFIER> "DisplayName "" at line 1, column 30'),
        ("select * from Customer; delete from Customer", '";" (59)'),
    ],
)
def test_unsupported_sql_is_a_parse_error(text: str, encountered: str) -> None:
    error = parse_failure(text)

    assert error.code == "4000"
    assert error.message == "Error parsing query"
    assert encountered in error.detail


def test_the_expected_tokens_are_listed_for_the_point_of_failure() -> None:
    error = parse_failure("select * from Customer where DisplayName")

    assert error.detail == (
        'QueryParserError: Encountered "<EOF>" at line 1, column 40.\nWas expecting one of:\n'
        '    "<" ...\n    "<=" ...\n    "=" ...\n    ">" ...\n    ">=" ...\n    "in" ...\n    "like" ...\n    '
    )


def test_an_unknown_entity_is_an_invalid_query() -> None:
    error = parse_failure("select * from Widget")

    assert (error.code, error.message) == ("4001", "Invalid query")
    assert error.detail == "QueryValidationError: Entity Widget not found"


def test_an_unknown_property_is_not_queryable() -> None:
    error = parse_failure("select * from Customer where Foo = 'x'")

    assert (error.code, error.message) == ("4001", "Invalid query")
    assert error.detail == "QueryValidationError: property 'Foo' is not queryable"


def test_a_real_but_unfilterable_property_is_not_queryable() -> None:
    # quickbooks-ruby#403: Vendor.PrimaryEmailAddr exists but is not filterable.
    error = parse_failure("select * from Vendor where PrimaryEmailAddr = 'john@doe.com'")

    assert error.detail == "QueryValidationError: property 'PrimaryEmailAddr' is not queryable"


def test_ordering_by_an_unknown_property_is_not_queryable() -> None:
    error = parse_failure("select * from Customer orderby Nickname")

    assert error.detail == "QueryValidationError: property 'Nickname' is not queryable"


def test_maxresults_above_1000_is_too_large() -> None:
    # quickbooks-ruby#24 quotes QBO's answer to MAXRESULTS 1500.
    error = parse_failure("select * from Customer maxresults 1001")

    assert (error.code, error.message) == ("4001", "Invalid query")
    assert error.detail == "QueryValidationError: value 1001 is too large. Max allowed value is 1000"


@pytest.mark.parametrize("clause", ["maxresults 0", "maxresults -5", "startposition 0", "startposition -1"])
def test_paging_values_below_one_are_too_small(clause: str) -> None:
    error = parse_failure(f"select * from Customer {clause}")

    assert error.code == "4001"
    assert "is too small. Min allowed value is 1" in error.detail


def test_startposition_zero_can_be_read_as_one() -> None:
    query = parse_query("select * from Customer startposition 0", ParseOptions(zero_start_position_is_error=False))

    assert query.start_position == 1


def test_the_maxresults_ceiling_is_configurable() -> None:
    error = parse_failure("select * from Customer maxresults 501", ParseOptions(max_results_limit=500))

    assert error.detail == "QueryValidationError: value 501 is too large. Max allowed value is 500"


@pytest.mark.parametrize(
    ("condition", "detail"),
    [
        ("Balance > 'abc'", "value 'abc' is not a valid number for property 'Balance'"),
        ("Balance > true", "value 'true' is not a valid number for property 'Balance'"),
        ("Balance > 'NaN'", "value 'NaN' is not a valid number for property 'Balance'"),
        ("Active = 'maybe'", "value 'maybe' is not a valid boolean for property 'Active'"),
        ("Active = 1", "value '1' is not a valid boolean for property 'Active'"),
        (
            "MetaData.CreateTime > 'yesterday'",
            "value 'yesterday' is not a valid date for property 'MetaData.CreateTime'",
        ),
        ("MetaData.CreateTime > 20240101", "value '20240101' is not a valid date for property 'MetaData.CreateTime'"),
        ("Balance like '1%'", "LIKE is not supported for property 'Balance' and value '1%'"),
        ("DisplayName like 5", "LIKE is not supported for property 'DisplayName' and value '5'"),
    ],
)
def test_a_literal_the_property_cannot_hold_is_an_invalid_query(condition: str, detail: str) -> None:
    entity = "Invoice" if condition.startswith("TxnDate") else "Customer"
    error = parse_failure(f"select * from {entity} where {condition}")

    assert error.code == "4001"
    assert error.detail == f"QueryValidationError: {detail}"


def test_a_syntax_error_is_reported_before_an_unknown_entity() -> None:
    # QBO parses the whole statement before validating names.
    error = parse_failure("select * from Widget where")

    assert error.code == "4000"


def test_an_error_becomes_a_fault_error_item() -> None:
    error = parse_failure("select * from Customer where Foo = 'x'")

    assert error.to_fault_error() == {
        "Message": "Invalid query",
        "Detail": "QueryValidationError: property 'Foo' is not queryable",
        "code": "4001",
    }
    assert str(error) == "Invalid query: QueryValidationError: property 'Foo' is not queryable"


def test_non_bmp_characters_are_escaped_as_utf16_surrogates() -> None:
    error = parse_failure("select * from Customer where DisplayName = \U0001f680")

    assert 'Encountered: "\\ud83d\\ude80" (55357)' in error.detail


def test_an_impossible_calendar_date_is_an_invalid_query() -> None:
    error = parse_failure("select * from Invoice where TxnDate = '2024-02-30'")

    assert error.detail == "QueryValidationError: value '2024-02-30' is not a valid date for property 'TxnDate'"
