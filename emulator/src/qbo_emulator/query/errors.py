"""The one exception the query engine raises, shaped like a QBO ``Fault`` error.

QBO reports query problems under three codes (Intuit error list; observed bodies quoted in client issue
threads):

* ``4000`` "Error parsing query" — lexical and grammar errors. The detail is the text of a JavaCC
  ``TokenMgrError`` / ``ParseException`` prefixed with ``QueryParserError:``, e.g.
  ``QueryParserError: Encountered " <IDENTIFIER> "R "" at line 1, column 52.`` (node-quickbooks#56,
  quickbooks-ruby#471) or ``QueryParserError: Invalid content. Lexical error at line 1, column 44.  Encountered:
  "%" (37), after : ""`` (quickbooks-node-promise#1).
* ``4001`` "Invalid query" — the statement parsed but names something QBO will not query, e.g.
  ``QueryValidationError: property 'PrimaryEmailAddr' is not queryable`` (quickbooks-ruby#403) or
  ``QueryValidationError: value 1500 is too large. Max allowed value is 1000`` (quickbooks-ruby#24).
* ``4002`` "Error processing query" — failures while running a valid query (not produced here).

Callers catch :class:`QueryError` and turn :meth:`QueryError.to_fault_error` into the ``Fault.Error[]`` item.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "INVALID_QUERY",
    "PARSE_ERROR",
    "QueryError",
    "java_escape",
]

PARSE_ERROR: Final = "4000"
INVALID_QUERY: Final = "4001"

_MESSAGES: Final = {PARSE_ERROR: "Error parsing query", INVALID_QUERY: "Invalid query"}

_JAVA_ESCAPES: Final = {
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
    '"': '\\"',
    "'": "\\'",
    "\\": "\\\\",
}


class QueryError(Exception):
    """A query QBO would reject; ``code`` is QBO's error code as a string ("4000", "4001")."""

    def __init__(self, message: str, detail: str, code: str = PARSE_ERROR) -> None:
        super().__init__(f"{message}: {detail}")
        self.message = message
        self.detail = detail
        self.code = code

    @classmethod
    def parse(cls, detail: str) -> QueryError:
        """A 4000 error; ``detail`` is the JavaCC text without the ``QueryParserError:`` prefix."""
        return cls(_MESSAGES[PARSE_ERROR], f"QueryParserError: {detail}", PARSE_ERROR)

    @classmethod
    def invalid(cls, detail: str) -> QueryError:
        """A 4001 error; ``detail`` is the text without the ``QueryValidationError:`` prefix."""
        return cls(_MESSAGES[INVALID_QUERY], f"QueryValidationError: {detail}", INVALID_QUERY)

    def to_fault_error(self) -> dict[str, str]:
        """The item QBO puts in ``Fault.Error`` (its ``type`` is ``ValidationFault``)."""
        return {"Message": self.message, "Detail": self.detail, "code": self.code}


def java_escape(text: str) -> str:
    """Escape ``text`` as JavaCC's ``addEscapes`` does, so error details match QBO byte for byte.

    Java strings are UTF-16, so a character outside the BMP prints as two ``\\uXXXX`` surrogates.
    """
    out: list[str] = []
    for char in text:
        if char in _JAVA_ESCAPES:
            out.append(_JAVA_ESCAPES[char])
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.extend(f"\\u{unit:04x}" for unit in utf16_units(char))
    return "".join(out)


def utf16_units(char: str) -> tuple[int, ...]:
    """The UTF-16 code units of one character (one unit in the BMP, a surrogate pair above it)."""
    code = ord(char)
    if code < 0x10000:
        return (code,)
    code -= 0x10000
    return (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))
