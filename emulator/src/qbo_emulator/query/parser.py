"""Parser and validator for QBO's query language.

Grammar (keywords case-insensitive)::

    query      := SELECT projection FROM Entity [WHERE cond (AND cond)*] tail* <EOF>
    projection := COUNT "(" "*" ")" | item ("," item)*          item := "*" | Property
    cond       := Property ("=" | "<" | ">" | "<=" | ">=" | LIKE) literal
                | Property IN "(" literal ("," literal)* ")"
    tail       := (ORDERBY | ORDER BY) Property [ASC|DESC] ("," Property [ASC|DESC])*
                | STARTPOSITION integer | MAXRESULTS integer        -- each tail at most once, any order
    literal    := 'string' | number | TRUE | FALSE

Decisions taken from evidence (see also the package docstring):

* ``ORDER BY`` is accepted as well as ``ORDERBY``: QBO's own syntax errors list both ``"order"`` and
  ``"orderby"`` as expected tokens (node-quickbooks#56), and python-quickbooks' ``all()`` sends ``ORDER BY``.
* ``OR`` is a parse error (4000). QBO's grammar has an ``<OR>`` token, but Intuit documents OR as unsupported
  and what QBO answers for it is not recorded anywhere found; failing loudly keeps clients honest.
* The statement is parsed completely before anything is validated, as QBO does: a syntax error is reported
  ahead of an unknown entity or property, which are 4001 errors.

Parsing is cached on ``(text, options)``: the emulator parses the same few query shapes over and over.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from qbo_emulator.query.errors import QueryError, java_escape
from qbo_emulator.query.lexer import Token, TokenKind, tokenize
from qbo_emulator.query.model import Condition, Operator, Query
from qbo_emulator.query.schema import DEFAULT_CATALOG, EntityCatalog, EntitySchema, FieldKind, Property
from qbo_emulator.query.values import LiteralValue, coerce_literal, literal_text

__all__ = ["DEFAULT_PARSE_OPTIONS", "ParseOptions", "parse_query"]


@dataclass(frozen=True)
class ParseOptions:
    """Switches for the behaviours the evidence leaves uncertain; the defaults are documented choices.

    * ``entity_case_sensitive`` — ``FROM customer`` fails (4001) when True. The project facts say entity names
      are case sensitive; note that node-quickbooks sends lower-case names (``select * from customer``) to
      production, which suggests real QBO is lenient. Default True, as specified.
    * ``property_case_sensitive`` — default False: clients in production filter on
      ``Metadata.LastUpdatedTime`` (Pipedream's QuickBooks source), so QBO matches property names loosely.
    * ``zero_start_position_is_error`` — default True (STARTPOSITION is 1-based). A .NET SDK user's
      ``STARTPOSITION 0`` query got past QBO's validation (QuickBooks-V3-DotNET-SDK#111); set False to treat
      0 as 1 like that.
    * ``max_results_limit`` / ``default_max_results`` — 1000 / 100 (Intuit docs). Above the limit QBO answers
      4001 ``value 1500 is too large. Max allowed value is 1000`` (quickbooks-ruby#24) rather than clamping.
    """

    entity_case_sensitive: bool = True
    property_case_sensitive: bool = False
    zero_start_position_is_error: bool = True
    default_max_results: int = 100
    max_results_limit: int = 1000
    catalog: EntityCatalog = field(default=DEFAULT_CATALOG)


DEFAULT_PARSE_OPTIONS = ParseOptions()


def parse_query(text: str, options: ParseOptions = DEFAULT_PARSE_OPTIONS) -> Query:
    """Parse and validate one QBO query; raises :class:`QueryError` (4000 syntax, 4001 validation)."""
    return _parse_cached(text, options)


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str, options: ParseOptions) -> Query:
    return _validate(_Parser(text).parse(), options)


@dataclass(frozen=True, slots=True)
class _RawCondition:
    field: Token
    op: Operator
    literals: tuple[Token, ...]


@dataclass(slots=True)
class _RawQuery:
    """What the grammar accepted, before any name is resolved."""

    count_only: bool = False
    projection: list[str] = field(default_factory=list)
    entity: str = ""
    where: list[_RawCondition] = field(default_factory=list)
    order_by: list[tuple[str, bool]] = field(default_factory=list)
    start_position: Token | None = None
    max_results: Token | None = None


_COMPARISONS = {
    TokenKind.EQ: Operator.EQ,
    TokenKind.LT: Operator.LT,
    TokenKind.GT: Operator.GT,
    TokenKind.LE: Operator.LE,
    TokenKind.GE: Operator.GE,
    TokenKind.IN: Operator.IN,
    TokenKind.LIKE: Operator.LIKE,
}
_LITERALS = (TokenKind.STRING, TokenKind.INTEGER, TokenKind.DECIMAL, TokenKind.TRUE, TokenKind.FALSE)


class _Parser:
    """Recursive descent with JavaCC-style error reports.

    Like JavaCC, it remembers every token kind it tried and failed to match since the last token it consumed;
    that set is the "Was expecting one of" list when the next step fails. Tokens are pulled lazily, so a syntax
    error ahead of a lexical error is the one reported, as in QBO.
    """

    def __init__(self, text: str) -> None:
        self._tokens: Iterator[Token] = tokenize(text)
        self._current = next(self._tokens)
        self._tried: set[TokenKind] = set()

    def parse(self) -> _RawQuery:
        raw = _RawQuery()
        self._expect(TokenKind.SELECT)
        self._projection(raw)
        self._expect(TokenKind.FROM)
        raw.entity = self._expect(TokenKind.IDENTIFIER).image
        if self._accept(TokenKind.WHERE):
            raw.where.append(self._condition())
            while self._accept(TokenKind.AND):
                raw.where.append(self._condition())
        self._tails(raw)
        self._expect(TokenKind.EOF)
        return raw

    def _projection(self, raw: _RawQuery) -> None:
        if self._accept(TokenKind.COUNT):
            for kind in (TokenKind.LPAREN, TokenKind.STAR, TokenKind.RPAREN):
                self._expect(kind)
            raw.count_only = True
            return
        raw.projection.append(self._expect(TokenKind.STAR, TokenKind.IDENTIFIER).image)
        while self._accept(TokenKind.COMMA):
            raw.projection.append(self._expect(TokenKind.STAR, TokenKind.IDENTIFIER).image)

    def _condition(self) -> _RawCondition:
        name = self._expect(TokenKind.IDENTIFIER)
        op = _COMPARISONS[self._expect(*_COMPARISONS).kind]
        if op is not Operator.IN:
            return _RawCondition(name, op, (self._expect(*_LITERALS),))
        self._expect(TokenKind.LPAREN)
        literals = [self._expect(*_LITERALS)]
        while self._accept(TokenKind.COMMA):
            literals.append(self._expect(*_LITERALS))
        self._expect(TokenKind.RPAREN)
        return _RawCondition(name, op, tuple(literals))

    def _tails(self, raw: _RawQuery) -> None:
        seen: set[TokenKind] = set()
        while True:
            wanted = [k for k in (TokenKind.ORDERBY, TokenKind.ORDER) if TokenKind.ORDERBY not in seen]
            wanted += [k for k in (TokenKind.STARTPOSITION, TokenKind.MAXRESULTS) if k not in seen]
            token = self._accept(*wanted)
            if token is None:
                return
            if token.kind is TokenKind.STARTPOSITION:
                raw.start_position = self._expect(TokenKind.INTEGER)
            elif token.kind is TokenKind.MAXRESULTS:
                raw.max_results = self._expect(TokenKind.INTEGER)
            else:
                if token.kind is TokenKind.ORDER:
                    self._expect(TokenKind.BY)
                self._order_items(raw)
            seen.add(TokenKind.ORDERBY if token.kind is TokenKind.ORDER else token.kind)

    def _order_items(self, raw: _RawQuery) -> None:
        while True:
            name = self._expect(TokenKind.IDENTIFIER).image
            direction = self._accept(TokenKind.ASC, TokenKind.DESC)
            raw.order_by.append((name, direction is not None and direction.kind is TokenKind.DESC))
            if not self._accept(TokenKind.COMMA):
                return

    def _accept(self, *kinds: TokenKind) -> Token | None:
        if self._current.kind in kinds:
            token = self._current
            if token.kind is not TokenKind.EOF:
                self._current = next(self._tokens)
            self._tried = set()
            return token
        self._tried.update(kinds)
        return None

    def _expect(self, *kinds: TokenKind) -> Token:
        token = self._accept(*kinds)
        if token is None:
            raise self._syntax_error()
        return token

    def _syntax_error(self) -> QueryError:
        """JavaCC's ``ParseException`` message for the current token and the kinds tried at this point."""
        token = self._current
        if token.kind is TokenKind.EOF:
            encountered = TokenKind.EOF.value
        else:
            encountered = f' {token.kind.value} "{java_escape(token.image)} "'
        expected = sorted(self._tried, key=lambda k: (k is not TokenKind.EOF, k.value[1:-1].lower()))
        header = "Was expecting:" if len(expected) == 1 else "Was expecting one of:"
        lines = "".join(f"{k.value} {'' if k is TokenKind.EOF else '...'}\n    " for k in expected)
        return QueryError.parse(
            f'Encountered "{encountered}" at line {token.line}, column {token.column}.\n{header}\n    {lines}'
        )


def _validate(raw: _RawQuery, options: ParseOptions) -> Query:
    """Resolve names against the catalog and check values; every failure is a 4001 error."""
    schema = options.catalog.find(raw.entity, case_sensitive=options.entity_case_sensitive)
    if schema is None:
        raise QueryError.invalid(f"Entity {raw.entity} not found")
    conditions = tuple(_resolve_condition(schema, cond, options) for cond in raw.where)
    order_properties = tuple(_resolve_property(schema, name, options) for name, _ in raw.order_by)
    return Query(
        entity=schema.name,
        count_only=raw.count_only,
        projection=tuple(raw.projection),
        where=conditions,
        order_by=tuple((prop.name, desc) for prop, (_, desc) in zip(order_properties, raw.order_by, strict=True)),
        start_position=_start_position(raw.start_position, options),
        max_results=_max_results(raw.max_results, options),
        order_properties=order_properties,
    )


def _resolve_property(schema: EntitySchema, name: str, options: ParseOptions) -> Property:
    prop = schema.find(name, case_sensitive=options.property_case_sensitive)
    if prop is None:
        raise QueryError.invalid(f"property '{name}' is not queryable")
    return prop


_LIKE_KINDS = frozenset({FieldKind.STRING, FieldKind.EMAIL, FieldKind.ID, FieldKind.REF})


def _resolve_condition(schema: EntitySchema, raw: _RawCondition, options: ParseOptions) -> Condition:
    prop = _resolve_property(schema, raw.field.image, options)
    values = tuple(_literal_value(token) for token in raw.literals)
    if raw.op is Operator.LIKE and (prop.kind not in _LIKE_KINDS or not isinstance(values[0], str)):
        value = literal_text(values[0])
        raise QueryError.invalid(f"LIKE is not supported for property '{prop.name}' and value '{value}'")
    operands = tuple(
        coerce_literal(prop, value, token.image) for value, token in zip(values, raw.literals, strict=True)
    )
    return Condition(field=prop.name, op=raw.op, values=values, operands=operands, prop=prop)


def _literal_value(token: Token) -> LiteralValue:
    if token.kind is TokenKind.TRUE:
        return True
    if token.kind is TokenKind.FALSE:
        return False
    assert isinstance(token.value, str | Decimal)
    return token.value


def _start_position(token: Token | None, options: ParseOptions) -> int:
    value = 1 if token is None else int(token.image)
    if value == 0 and not options.zero_start_position_is_error:
        return 1
    if value < 1:
        raise QueryError.invalid(f"value {value} is too small. Min allowed value is 1")
    return value


def _max_results(token: Token | None, options: ParseOptions) -> int:
    value = options.default_max_results if token is None else int(token.image)
    if value < 1:
        raise QueryError.invalid(f"value {value} is too small. Min allowed value is 1")
    if value > options.max_results_limit:
        raise QueryError.invalid(f"value {value} is too large. Max allowed value is {options.max_results_limit}")
    return value
