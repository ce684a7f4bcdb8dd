"""The SOQL subset guests may run: text in, a small typed AST out.

Besides comparisons, LIKE and IN it has INCLUDES / EXCLUDES for multi-select picklists,
date and datetime literals (``2026-01-31``, ``2026-01-31T10:00:00Z``) and the relative date
literals (``TODAY``, ``LAST_N_DAYS:7``, ``THIS_MONTH``...; see ``date_range``).

The parser never produces SQL. A store compiles the AST itself, binding every name and
value that came from the guest as a parameter. Errors are ``QueryError`` with the 1-based
line and column and what was expected. Nesting depth, condition count and query length
are capped so that hostile input fails with a ``QueryError``, never a ``RecursionError``.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal, TypeAlias

from ..errors import QueryError

Scalar: TypeAlias = bool | int | float | str | None
CompareOp: TypeAlias = Literal["=", "!=", "<", "<=", ">", ">="]

MAX_QUERY_LENGTH = 100_000
# MAX_DEPTH (AND / OR / NOT levels) and MAX_CONDITIONS also keep the SQL a store generates
# inside SQLite's limits: about 28 nested parenthesised groups, expression depth 1000.
MAX_DEPTH = 20
MAX_CONDITIONS = 500
MAX_NUMBER_LENGTH = 40
# A LIKE costs up to pattern length x value length per row, and SQLite cannot interrupt a row's
# conditions midway: these bound the pattern side, per LIKE and over all of a query's LIKEs
# (INCLUDES terms count: each is a LIKE).
MAX_LIKE_PATTERN_LENGTH = 200
MAX_LIKE_PATTERNS_LENGTH = 2_000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""A field or object name; ``fullmatch`` it. Dotted parent references are several of these."""

KEYWORDS = frozenset(
    {
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC",
        "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "NULL", "TRUE", "FALSE",
    }
)  # fmt: skip

DATE_LITERALS = frozenset(
    {
        "TODAY", "YESTERDAY", "TOMORROW", "THIS_WEEK", "LAST_WEEK", "NEXT_WEEK",
        "THIS_MONTH", "LAST_MONTH", "NEXT_MONTH", "THIS_YEAR", "LAST_YEAR", "NEXT_YEAR",
    }
)  # fmt: skip
"""Relative date literals without a number; recognised only where a value is expected."""
N_DATE_LITERALS = frozenset({"LAST_N_DAYS", "NEXT_N_DAYS"})
"""Relative date literals written ``NAME:n``."""
MAX_N_DAYS = 100_000


@dataclass(frozen=True)
class Position:
    """Where a token starts in the query text (1-based)."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}"


_NOWHERE = Position(0, 0)


def error_at(pos: Position, message: str) -> QueryError:
    """A ``QueryError`` that points at ``pos``."""
    return QueryError(f"{pos}: {message}")


def check_like_pattern(pattern: str, pos: Position) -> str:
    """``pattern``, or a ``QueryError`` if it is longer than ``MAX_LIKE_PATTERN_LENGTH``."""
    if len(pattern) > MAX_LIKE_PATTERN_LENGTH:
        raise error_at(pos, f"LIKE pattern of {len(pattern)} characters is over the {MAX_LIKE_PATTERN_LENGTH} allowed")
    return pattern


@dataclass(frozen=True)
class Field:
    """A field reference; ``path`` has more than one part for a parent reference (Account.Name)."""

    path: tuple[str, ...]
    pos: Position = field(default=_NOWHERE, compare=False, repr=False)

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class Constant:
    value: Scalar
    pos: Position = field(default=_NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Bind:
    """A bind variable ``:name``, resolved against the caller's binds when the query runs."""

    name: str
    pos: Position = field(default=_NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Temporal:
    """A date (``2026-01-31``) or datetime (``2026-01-31T10:00:00Z``, always timezone-aware) literal."""

    value: date | datetime
    pos: Position = field(default=_NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class DateLiteral:
    """A relative date literal such as ``TODAY`` or ``LAST_N_DAYS:7``; ``n`` only for the latter."""

    name: str
    n: int | None = None
    pos: Position = field(default=_NOWHERE, compare=False, repr=False)


Operand: TypeAlias = Constant | Bind | Temporal | DateLiteral
ListValue: TypeAlias = Constant | Temporal


@dataclass(frozen=True)
class Comparison:
    field: Field
    op: CompareOp  # "<>" is normalised to "!="
    value: Operand


@dataclass(frozen=True)
class Like:
    field: Field
    pattern: Operand


@dataclass(frozen=True)
class In:
    field: Field
    values: tuple[ListValue, ...] | Bind
    negated: bool = False


@dataclass(frozen=True)
class Includes:
    """``INCLUDES`` (or, negated, ``EXCLUDES``) on a multi-select picklist.

    Each value is a set of terms separated by ``;``: ``INCLUDES ('a;b', 'c')`` matches a field
    holding both a and b, or holding c.
    """

    field: Field
    values: tuple[Constant, ...] | Bind
    negated: bool = False


@dataclass(frozen=True)
class Not:
    operand: Condition


@dataclass(frozen=True)
class And:
    operands: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Condition, ...]


Condition: TypeAlias = Comparison | Like | In | Includes | Not | And | Or


@dataclass(frozen=True)
class SortKey:
    field: Field
    descending: bool = False
    nulls_first: bool = True  # SOQL sorts nulls first unless told otherwise


@dataclass(frozen=True)
class Query:
    """A parsed query. ``count`` is ``SELECT COUNT()``, in which case ``fields`` is empty."""

    object_name: str
    fields: tuple[Field, ...] = ()
    count: bool = False
    where: Condition | None = None
    order_by: tuple[SortKey, ...] = ()
    limit: int | Bind | None = None
    offset: int | Bind | None = None


def parse(soql: str) -> Query:
    """Parse one query; raise ``QueryError`` naming the position and what was expected."""
    if len(soql) > MAX_QUERY_LENGTH:
        raise QueryError(f"query is longer than {MAX_QUERY_LENGTH} characters")
    return _Parser(_tokenize(soql)).query()


# --- binds -------------------------------------------------------------------------------


def date_range(literal: DateLiteral, today: date) -> tuple[date, date]:
    """The days a relative date literal covers: ``[start, end)``.

    ``LAST_N_DAYS:n`` is today and the n days before it; ``NEXT_N_DAYS:n`` the n days after
    today. Weeks start on Sunday.
    """
    one = timedelta(days=1)
    name, n = literal.name, literal.n or 0
    if name == "TODAY":
        return today, today + one
    if name == "YESTERDAY":
        return today - one, today
    if name == "TOMORROW":
        return today + one, today + 2 * one
    if name == "LAST_N_DAYS":
        return today - n * one, today + one
    if name == "NEXT_N_DAYS":
        return today + one, today + (n + 1) * one
    relative, period = name.split("_", 1)
    shift = {"THIS": 0, "LAST": -1, "NEXT": 1}[relative]
    if period == "WEEK":
        start = today - ((today.weekday() + 1) % 7) * one + shift * 7 * one
        return start, start + 7 * one
    if period == "MONTH":
        months = today.year * 12 + today.month - 1 + shift
        start = date(months // 12, months % 12 + 1, 1)
        months += 1
        return start, date(months // 12, months % 12 + 1, 1)
    year = today.year + shift
    return date(year, 1, 1), date(year + 1, 1, 1)


def bind_scalar(binds: Mapping[str, object], bind: Bind) -> Scalar:
    """The scalar value of ``bind``; a list, a missing name or a bad value is a ``QueryError``."""
    value = _bind_value(binds, bind)
    if isinstance(value, list | tuple):
        raise error_at(bind.pos, f"bind variable :{bind.name} is a list; expected a single value")
    return _check_scalar(value, bind)


def bind_list(binds: Mapping[str, object], bind: Bind) -> list[Scalar]:
    """The list value of ``bind`` (for IN / NOT IN)."""
    value = _bind_value(binds, bind)
    if not isinstance(value, list | tuple):
        raise error_at(bind.pos, f"bind variable :{bind.name} must be a list for IN")
    return [_check_scalar(item, bind) for item in value]


def bind_count(binds: Mapping[str, object], bind: Bind | int) -> int:
    """A LIMIT / OFFSET value: a non-negative integer."""
    if isinstance(bind, int):
        return bind
    value = _bind_value(binds, bind)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
        raise error_at(bind.pos, f"bind variable :{bind.name} must be a non-negative integer")
    return value


def _bind_value(binds: Mapping[str, object], bind: Bind) -> object:
    if bind.name not in binds:
        raise error_at(bind.pos, f"unknown bind variable :{bind.name}")
    return binds[bind.name]


def _check_scalar(value: object, bind: Bind) -> Scalar:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return value
        raise error_at(bind.pos, f"bind variable :{bind.name}: integer out of 64-bit range")
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise error_at(bind.pos, f"bind variable :{bind.name}: number must be finite")
    raise error_at(bind.pos, f"bind variable :{bind.name}: unsupported value of type {type(value).__name__}")


# --- tokens ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: Literal["ident", "keyword", "string", "number", "temporal", "dateliteral", "bind", "op", "end"]
    text: str  # source text; upper-cased for keywords and date literals
    value: Scalar  # for "dateliteral", the n of NAME:n
    pos: Position
    temporal: date | datetime | None = None

    def describe(self) -> str:
        if self.kind == "end":
            return "end of input"
        text = self.text if len(self.text) <= 30 else self.text[:27] + "..."
        return f"'{text}'"


_SPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_TEMPORAL = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?(Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_N_DAYS = re.compile(r":([0-9]{1,7})")
_OPERATOR = re.compile(r"!=|<>|<=|>=|[=<>(),.+-]")
_ESCAPES = {
    "n": "\n", "N": "\n", "r": "\r", "R": "\r", "t": "\t", "T": "\t",
    "b": "\b", "B": "\b", "f": "\f", "F": "\f",
    '"': '"', "'": "'", "\\": "\\",
    "%": "\\%", "_": "\\_",  # kept escaped: they mean a literal % or _ in a LIKE pattern
}  # fmt: skip


def _tokenize(soql: str) -> Iterator[_Token]:
    """Tokens on demand, so that the earliest error in the text is the one reported."""
    line_starts = [0] + [m.end() for m in re.finditer("\n", soql)]

    def pos(index: int) -> Position:
        line = bisect_right(line_starts, index)
        return Position(line, index - line_starts[line - 1] + 1)

    i = 0
    while i < len(soql):
        if m := _SPACE.match(soql, i):
            i = m.end()
            continue
        char = soql[i]
        if m := IDENTIFIER.match(soql, i):
            word = m.group()
            if word.upper() in KEYWORDS:
                yield _Token("keyword", word.upper(), None, pos(i))
            elif word.upper() in N_DATE_LITERALS and soql.startswith(":", m.end()):
                n = _N_DAYS.match(soql, m.end())
                if n is None or int(n.group(1)) > MAX_N_DAYS:
                    raise error_at(pos(m.end() + 1), f"{word.upper()} needs a number of days from 0 to {MAX_N_DAYS}")
                yield _Token("dateliteral", word.upper(), int(n.group(1)), pos(i))
                i = n.end()
                continue
            else:
                yield _Token("ident", word, word, pos(i))
            i = m.end()
        elif m := _TEMPORAL.match(soql, i):
            yield _Token("temporal", m.group(), None, pos(i), _temporal(m, pos(i)))
            i = m.end()
        elif m := _NUMBER.match(soql, i):
            text = m.group()
            if len(text) > MAX_NUMBER_LENGTH:
                raise error_at(pos(i), f"number literal longer than {MAX_NUMBER_LENGTH} characters")
            number: int | float = float(text) if "." in text else int(text)
            yield _Token("number", text, number, pos(i))
            i = m.end()
        elif char == "'":
            value, end = _string_literal(soql, i, pos)
            yield _Token("string", soql[i:end], value, pos(i))
            i = end
        elif char == ":":
            m = IDENTIFIER.match(soql, i + 1)
            if m is None:
                raise error_at(pos(i + 1), "expected bind variable name after ':'")
            yield _Token("bind", soql[i : m.end()], m.group(), pos(i))
            i = m.end()
        elif m := _OPERATOR.match(soql, i):
            yield _Token("op", m.group(), None, pos(i))
            i = m.end()
        else:
            raise error_at(pos(i), f"unexpected character {char!r}")
    yield _Token("end", "", None, pos(len(soql)))


def _temporal(m: re.Match[str], at: Position) -> date | datetime:
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    try:
        if hour is None:
            return date(int(year), int(month), int(day))
        if zone is None:
            raise error_at(at, f"datetime literal {m.group()} needs a time zone (Z or +hh:mm)")
        offset = "+00:00" if zone == "Z" else zone
        micro = (fraction or "").ljust(6, "0")
        return datetime.fromisoformat(f"{year}-{month}-{day}T{hour}:{minute}:{second}.{micro}{offset}").astimezone(UTC)
    except ValueError:
        raise error_at(at, f"invalid date or datetime literal {m.group()}") from None


def _string_literal(soql: str, start: int, pos: Callable[[int], Position]) -> tuple[str, int]:
    """The value of the quoted literal at ``start`` and the index just past it."""
    parts: list[str] = []
    i = start + 1
    while i < len(soql):
        j = min((k for k in (soql.find("'", i), soql.find("\\", i)) if k >= 0), default=-1)
        if j < 0:
            break
        parts.append(soql[i:j])
        if soql[j] == "'":
            return "".join(parts), j + 1
        escaped = soql[j + 1 : j + 2]
        if escaped not in _ESCAPES:
            shown = repr("\\" + escaped) if escaped else "at end of input"
            raise error_at(pos(j), f"invalid escape sequence {shown} in string literal")
        parts.append(_ESCAPES[escaped])
        i = j + 2
    raise error_at(pos(start), "unterminated string literal")


# --- grammar -----------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: Iterator[_Token]) -> None:
        self.source = tokens
        self.tokens: list[_Token] = []  # read so far; the last one read may be "end"
        self.i = 0
        self.conditions = 0

    # token helpers

    def peek(self, ahead: int = 0) -> _Token:
        while len(self.tokens) <= self.i + ahead and (not self.tokens or self.tokens[-1].kind != "end"):
            self.tokens.append(next(self.source))
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.peek()
        if token.kind != "end":
            self.i += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        token = self.peek()
        return token.kind == "keyword" and token.text in words

    def at_op(self, *ops: str) -> bool:
        token = self.peek()
        return token.kind == "op" and token.text in ops

    def accept_keyword(self, word: str) -> bool:
        if self.at_keyword(word):
            self.advance()
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.accept_keyword(word):
            raise self.expected(word)

    def expect_op(self, op: str) -> None:
        if not self.at_op(op):
            raise self.expected(f"'{op}'")
        self.advance()

    def expected(self, what: str) -> QueryError:
        token = self.peek()
        return error_at(token.pos, f"expected {what}, found {token.describe()}")

    # clauses

    def query(self) -> Query:
        self.expect_keyword("SELECT")
        count = False
        fields: list[Field] = []
        if (
            self.peek().kind == "ident"
            and self.peek().text.upper() == "COUNT"
            and self.peek(1).kind == "op"
            and self.peek(1).text == "("
        ):
            self.advance()
            self.advance()
            self.expect_op(")")
            count = True
        else:
            seen: set[str] = set()
            while True:
                f = self.field_ref()
                if f.name.lower() in seen:
                    raise error_at(f.pos, f"duplicate field {f.name} in SELECT")
                seen.add(f.name.lower())
                fields.append(f)
                if not self.at_op(","):
                    break
                self.advance()
        self.expect_keyword("FROM")
        object_name = self.identifier("object name")

        where = None
        if self.accept_keyword("WHERE"):
            where, _ = self.or_condition(0)
        order_by: tuple[SortKey, ...] = ()
        if self.accept_keyword("ORDER"):
            self.expect_keyword("BY")
            order_by = self.sort_keys()
        limit = self.count_value() if self.accept_keyword("LIMIT") else None
        offset = self.count_value() if self.accept_keyword("OFFSET") else None

        if self.peek().kind != "end":
            clauses = [
                ("WHERE", where is None and not order_by and limit is None and offset is None),
                ("ORDER BY", not order_by and limit is None and offset is None),
                ("LIMIT", limit is None and offset is None),
                ("OFFSET", offset is None),
            ]
            allowed = [name for name, possible in clauses if possible]
            raise self.expected(", ".join(allowed) + " or end of query" if allowed else "end of query")
        return Query(object_name, tuple(fields), count, where, order_by, limit, offset)

    def identifier(self, what: str) -> str:
        token = self.peek()
        if token.kind != "ident":
            raise self.expected(what)
        self.advance()
        return token.text

    def field_ref(self) -> Field:
        pos = self.peek().pos
        path = [self.identifier("field name")]
        while self.at_op("."):
            self.advance()
            path.append(self.identifier("field name after '.'"))
        return Field(tuple(path), pos)

    def sort_keys(self) -> tuple[SortKey, ...]:
        keys: list[SortKey] = []
        while True:
            f = self.field_ref()
            descending = False
            if self.at_keyword("ASC", "DESC"):
                descending = self.advance().text == "DESC"
            nulls_first = True
            if self.accept_keyword("NULLS"):
                if not self.at_keyword("FIRST", "LAST"):
                    raise self.expected("FIRST or LAST")
                nulls_first = self.advance().text == "FIRST"
            keys.append(SortKey(f, descending, nulls_first))
            if not self.at_op(","):
                return tuple(keys)
            self.advance()

    def count_value(self) -> int | Bind:
        token = self.peek()
        if token.kind == "bind":
            self.advance()
            return Bind(token.text[1:], token.pos)
        if token.kind == "number" and isinstance(token.value, int) and token.value <= INT64_MAX:
            self.advance()
            return token.value
        raise self.expected("a non-negative integer or :bind")

    # conditions: OR binds loosest, then AND, then NOT

    # Each returns the condition and its height: how many AND / OR / NOT levels it nests,
    # which is what a store's SQL nests too. Both the height and the nesting of the text
    # (parentheses and NOTs, which bound the recursion here) are capped at MAX_DEPTH.

    def or_condition(self, depth: int) -> tuple[Condition, int]:
        return self.chain(depth, "OR", Or, self.and_condition)

    def and_condition(self, depth: int) -> tuple[Condition, int]:
        return self.chain(depth, "AND", And, self.not_condition)

    def chain(
        self,
        depth: int,
        keyword: str,
        kind: type[And] | type[Or],
        operand: Callable[[int], tuple[Condition, int]],
    ) -> tuple[Condition, int]:
        """Operands joined by ``keyword``; a parenthesised operand of the same kind is merged in."""
        pos = self.peek().pos
        items = [operand(depth)]
        while self.accept_keyword(keyword):
            items.append(operand(depth))
        if len(items) == 1:
            return items[0]
        operands: list[Condition] = []
        height = 0
        for condition, condition_height in items:
            if isinstance(condition, kind):
                operands += condition.operands
                height = max(height, condition_height - 1)
            else:
                operands.append(condition)
                height = max(height, condition_height)
        return kind(tuple(operands)), self.checked_height(height + 1, pos)

    def not_condition(self, depth: int) -> tuple[Condition, int]:
        if self.at_keyword("NOT"):
            pos = self.peek().pos
            self.check_depth(depth)
            self.advance()
            operand, height = self.not_condition(depth + 1)
            return Not(operand), self.checked_height(height + 1, pos)
        return self.primary_condition(depth)

    def check_depth(self, depth: int) -> None:
        if depth >= MAX_DEPTH:
            raise error_at(self.peek().pos, f"conditions nested more than {MAX_DEPTH} levels deep")

    def checked_height(self, height: int, pos: Position) -> int:
        if height > MAX_DEPTH:
            raise error_at(pos, f"conditions nested more than {MAX_DEPTH} levels deep")
        return height

    def primary_condition(self, depth: int) -> tuple[Condition, int]:
        if self.at_op("("):
            self.check_depth(depth)
            self.advance()
            inner = self.or_condition(depth + 1)
            self.expect_op(")")
            return inner
        return self.predicate(), 0

    def predicate(self) -> Condition:
        if self.peek().kind != "ident":
            raise self.expected("field name, NOT or '('")
        f = self.field_ref()
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise error_at(f.pos, f"WHERE has more than {MAX_CONDITIONS} conditions")
        token = self.peek()
        if token.kind == "op" and token.text in ("=", "!=", "<>", "<", "<=", ">", ">="):
            self.advance()
            op: CompareOp = "!=" if token.text == "<>" else token.text  # type: ignore[assignment]
            value = self.operand()
            if isinstance(value, Constant) and value.value is None and op not in ("=", "!="):
                raise error_at(value.pos, f"NULL can only be compared with = or !=, not {token.text}")
            return Comparison(f, op, value)
        if self.accept_keyword("LIKE"):
            pattern = self.operand()
            if not isinstance(pattern, Bind) and not (isinstance(pattern, Constant) and isinstance(pattern.value, str)):
                raise error_at(pattern.pos, "LIKE needs a string pattern")
            if isinstance(pattern, Constant):
                check_like_pattern(str(pattern.value), pattern.pos)
            return Like(f, pattern)
        if self.accept_keyword("IN"):
            return In(f, self.value_list())
        if token.kind == "ident" and token.text.upper() in ("INCLUDES", "EXCLUDES"):
            self.advance()
            word = token.text.upper()
            values = self.value_list()
            if isinstance(values, Bind):
                return Includes(f, values, negated=word == "EXCLUDES")
            strings: list[Constant] = []
            for value in values:
                if not isinstance(value, Constant) or not isinstance(value.value, str):
                    raise error_at(value.pos, f"{word} needs string values")
                strings.append(value)
            return Includes(f, tuple(strings), negated=word == "EXCLUDES")
        if self.accept_keyword("NOT"):
            self.expect_keyword("IN")
            return In(f, self.value_list(), negated=True)
        raise self.expected("comparison operator (=, !=, <>, <, <=, >, >=, LIKE, IN, NOT IN, INCLUDES, EXCLUDES)")

    def operand(self) -> Operand:
        token = self.peek()
        if token.kind == "bind":
            self.advance()
            return Bind(token.text[1:], token.pos)
        if token.kind == "dateliteral":
            self.advance()
            assert isinstance(token.value, int)
            return DateLiteral(token.text, token.value, token.pos)
        if token.kind == "ident" and token.text.upper() in DATE_LITERALS:
            self.advance()
            return DateLiteral(token.text.upper(), None, token.pos)
        return self.constant()

    def constant(self) -> ListValue:
        token = self.peek()
        if token.kind == "temporal":
            self.advance()
            assert token.temporal is not None
            return Temporal(token.temporal, token.pos)
        if token.kind in ("string", "number"):
            self.advance()
            return Constant(self.checked_number(token) if token.kind == "number" else token.value, token.pos)
        if token.kind == "keyword" and token.text in ("NULL", "TRUE", "FALSE"):
            self.advance()
            return Constant({"NULL": None, "TRUE": True, "FALSE": False}[token.text], token.pos)
        if self.at_op("-", "+") and self.peek(1).kind == "number":
            sign = -1 if self.advance().text == "-" else 1
            number = self.checked_number(self.advance(), sign)
            return Constant(number, token.pos)
        raise self.expected("a value (string, number, date, TRUE, FALSE, NULL or :bind)")

    def checked_number(self, token: _Token, sign: int = 1) -> int | float:
        assert isinstance(token.value, int | float)
        number = sign * token.value
        if isinstance(number, int) and not INT64_MIN <= number <= INT64_MAX:
            raise error_at(token.pos, "integer literal out of 64-bit range")
        return number

    def value_list(self) -> tuple[ListValue, ...] | Bind:
        token = self.peek()
        if token.kind == "bind":
            self.advance()
            return Bind(token.text[1:], token.pos)
        if not self.at_op("("):
            raise self.expected("'(' or :bind")
        self.advance()
        values = [self.constant()]
        while self.at_op(","):
            self.advance()
            values.append(self.constant())
        self.expect_op(")")
        return tuple(values)
