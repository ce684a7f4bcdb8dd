"""The SOQL subset: what parses into which AST, and what is refused with which message."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from circuit_host.errors import QueryError
from circuit_host.soql.parser import (
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_N_DAYS,
    MAX_QUERY_LENGTH,
    And,
    Bind,
    Comparison,
    Constant,
    DateLiteral,
    Field,
    In,
    Includes,
    Like,
    Not,
    Or,
    Query,
    SortKey,
    Temporal,
    bind_count,
    bind_list,
    bind_scalar,
    date_range,
    parse,
)


def where(condition: str) -> object:
    query = parse(f"SELECT Id FROM Contact WHERE {condition}")
    return query.where


def eq(name: str, value: object) -> Comparison:
    return Comparison(Field((name,)), "=", Constant(value))  # type: ignore[arg-type]


def parse_error(soql: str) -> str:
    with pytest.raises(QueryError) as info:
        parse(soql)
    return str(info.value)


# --- the shape of a query ------------------------------------------------------------------


def test_minimal_query() -> None:
    assert parse("SELECT Id FROM Contact") == Query("Contact", (Field(("Id",)),))


def test_every_clause() -> None:
    query = parse(
        "SELECT Id, FirstName, Account.Name FROM Contact WHERE LastName = 'Smith' "
        "ORDER BY LastName DESC NULLS LAST, FirstName LIMIT 10 OFFSET 20"
    )
    assert query == Query(
        object_name="Contact",
        fields=(Field(("Id",)), Field(("FirstName",)), Field(("Account", "Name"))),
        where=eq("LastName", "Smith"),
        order_by=(SortKey(Field(("LastName",)), True, False), SortKey(Field(("FirstName",)))),
        limit=10,
        offset=20,
    )


def test_keywords_are_case_insensitive_and_names_keep_their_casing() -> None:
    query = parse("select firstName from contact where lastname = 'x' order by Id asc nulls first limit 1")
    assert query.fields == (Field(("firstName",)),)
    assert query.object_name == "contact"
    assert query.order_by == (SortKey(Field(("Id",)), False, True),)


def test_count() -> None:
    assert parse("SELECT COUNT() FROM Lead") == Query("Lead", (), count=True)
    assert parse("select count ( ) from Lead").count


def test_a_field_may_be_called_count() -> None:
    assert parse("SELECT Count FROM Lead").fields == (Field(("Count",)),)


def test_limit_and_offset_take_binds() -> None:
    query = parse("SELECT Id FROM Contact LIMIT :n OFFSET :skip")
    assert (query.limit, query.offset) == (Bind("n"), Bind("skip"))


def test_query_may_span_lines() -> None:
    query = parse("SELECT Id\n  FROM Contact\n  WHERE Name = 'a'\n")
    assert query.where == eq("Name", "a")


def test_order_by_defaults_to_ascending_nulls_first() -> None:
    assert parse("SELECT Id FROM A ORDER BY X DESC").order_by == (SortKey(Field(("X",)), True, True),)


# --- conditions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "op"),
    [("=", "="), ("!=", "!="), ("<>", "!="), ("<", "<"), ("<=", "<="), (">", ">"), (">=", ">=")],
)
def test_comparison_operators(text: str, op: str) -> None:
    assert where(f"Amount {text} 5") == Comparison(Field(("Amount",)), op, Constant(5))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'text'", "text"),
        ("''", ""),
        ("42", 42),
        ("-42", -42),
        ("+7", 7),
        ("3.25", 3.25),
        ("-0.5", -0.5),
        ("TRUE", True),
        ("false", False),
        ("NULL", None),
        ("null", None),
    ],
)
def test_literals(literal: str, value: object) -> None:
    assert where(f"X = {literal}") == eq("X", value)


def test_string_escapes() -> None:
    assert where(r"X = 'it\'s \"q\" \\ \n\t\r\b\f'") == eq("X", 'it\'s "q" \\ \n\t\r\b\f')


def test_like_wildcard_escapes_stay_escaped_for_the_store() -> None:
    assert where(r"X LIKE '50\%\_off%'") == Like(Field(("X",)), Constant("50\\%\\_off%"))


def test_bind_operand() -> None:
    assert where("Email = :email") == Comparison(Field(("Email",)), "=", Bind("email"))


def test_in_and_not_in() -> None:
    assert where("X IN ('a', 1, NULL)") == In(Field(("X",)), (Constant("a"), Constant(1), Constant(None)))
    assert where("X NOT IN :ids") == In(Field(("X",)), Bind("ids"), negated=True)


def test_like() -> None:
    assert where("Name LIKE 'Ac%'") == Like(Field(("Name",)), Constant("Ac%"))
    assert where("Name LIKE :p") == Like(Field(("Name",)), Bind("p"))


def test_not_binds_tighter_than_and_which_binds_tighter_than_or() -> None:
    assert where("A = 1 OR NOT B = 2 AND C = 3") == Or((eq("A", 1), And((Not(eq("B", 2)), eq("C", 3)))))


def test_parentheses_override_precedence() -> None:
    assert where("(A = 1 OR B = 2) AND C = 3") == And((Or((eq("A", 1), eq("B", 2))), eq("C", 3)))
    assert where("NOT (A = 1 OR B = 2)") == Not(Or((eq("A", 1), eq("B", 2))))


def test_chains_are_flat() -> None:
    assert where("A = 1 AND B = 2 AND C = 3") == And((eq("A", 1), eq("B", 2), eq("C", 3)))


def test_parentheses_that_change_nothing_are_dropped() -> None:
    assert where("A = 1 AND (B = 2 AND C = 3)") == And((eq("A", 1), eq("B", 2), eq("C", 3)))
    assert where("((A = 1) OR ((B = 2 OR C = 3)))") == Or((eq("A", 1), eq("B", 2), eq("C", 3)))


# --- errors name the position and what was expected ----------------------------------------


@pytest.mark.parametrize(
    ("soql", "message"),
    [
        ("SELECT Id, Name FORM Contact", "line 1, column 17: expected FROM, found 'FORM'"),
        ("", "line 1, column 1: expected SELECT, found end of input"),
        ("SELECT FROM Contact", "line 1, column 8: expected field name, found 'FROM'"),
        ("SELECT Id, FROM Contact", "line 1, column 12: expected field name, found 'FROM'"),
        ("SELECT Id FROM", "line 1, column 15: expected object name, found end of input"),
        (
            "SELECT Id FROM Contact WHER Name = 'x'",
            "line 1, column 24: expected WHERE, ORDER BY, LIMIT, OFFSET or end of query, found 'WHER'",
        ),
        (
            "SELECT Id FROM Contact LIMIT 5 WHERE X = 1",
            "line 1, column 32: expected OFFSET or end of query, found 'WHERE'",
        ),
        ("SELECT Id FROM Contact WHERE", "line 1, column 29: expected field name, NOT or '(', found end of input"),
        (
            "SELECT Id FROM Contact WHERE Name 'x'",
            "line 1, column 35: expected comparison operator (=, !=, <>, <, <=, >, >=, LIKE, IN, NOT IN, INCLUDES, "
            "EXCLUDES), found ''x''",
        ),
        (
            "SELECT Id FROM Contact WHERE Name = ",
            "line 1, column 37: expected a value (string, number, date, TRUE, FALSE, NULL or :bind), "
            "found end of input",
        ),
        ("SELECT Id FROM Contact WHERE (Name = 'x'", "line 1, column 41: expected ')', found end of input"),
        ("SELECT Id FROM Contact WHERE X IN 'a'", "line 1, column 35: expected '(' or :bind, found ''a''"),
        ("SELECT Id FROM Contact WHERE X NOT LIKE 'a'", "line 1, column 36: expected IN, found 'LIKE'"),
        ("SELECT Id FROM Contact ORDER Name", "line 1, column 30: expected BY, found 'Name'"),
        ("SELECT Id FROM Contact ORDER BY Name NULLS", "line 1, column 43: expected FIRST or LAST, found end of input"),
        ("SELECT Id FROM Contact LIMIT -1", "line 1, column 30: expected a non-negative integer or :bind, found '-'"),
        (
            "SELECT Id FROM Contact LIMIT 1.5",
            "line 1, column 30: expected a non-negative integer or :bind, found '1.5'",
        ),
        ("SELECT Id FROM Contact WHERE X = :", "line 1, column 35: expected bind variable name after ':'"),
        ("SELECT Id FROM Contact WHERE X < NULL", "line 1, column 34: NULL can only be compared with = or !=, not <"),
        ("SELECT Id FROM Contact WHERE X LIKE 5", "line 1, column 37: LIKE needs a string pattern"),
        ("SELECT Id, id FROM Contact", "line 1, column 12: duplicate field id in SELECT"),
        (
            "SELECT Id FROM Contact\nWHERE Name = 'x'\n  AND",
            "line 3, column 6: expected field name, NOT or '(', found end of input",
        ),
        (
            "SELECT Id FROM Contact WHERE X = 'a\\qb'",
            "line 1, column 36: invalid escape sequence '\\\\q' in string literal",
        ),
        ("SELECT Account. FROM Contact", "line 1, column 17: expected field name after '.', found 'FROM'"),
        ("SELECT COUNT() , Id FROM Contact", "line 1, column 16: expected FROM, found ','"),
    ],
)
def test_syntax_errors(soql: str, message: str) -> None:
    assert parse_error(soql) == message


def test_unterminated_string_points_at_its_opening_quote() -> None:
    assert parse_error("SELECT Id FROM Contact WHERE Name = 'abc") == "line 1, column 37: unterminated string literal"
    assert parse_error("SELECT Id FROM Contact WHERE Name = 'abc\\'") == (
        "line 1, column 37: unterminated string literal"
    )


def test_long_tokens_are_shortened_in_messages() -> None:
    message = parse_error("SELECT Id FROM Contact " + "X" * 500)
    assert message.endswith("found 'XXXXXXXXXXXXXXXXXXXXXXXXXXX...'")


# --- hostile input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("soql", "message"),
    [
        ("SELECT Id FROM Contact; DROP TABLE records", "line 1, column 23: unexpected character ';'"),
        ('SELECT "Name" FROM Contact', "line 1, column 8: unexpected character '\"'"),
        ("SELECT Na'me FROM Contact", "line 1, column 10: unterminated string literal"),
        ("SELECT `x` FROM Contact", "line 1, column 8: unexpected character '`'"),
        ("SELECT Id FROM Contact WHERE X = 1 -- comment", "line 1, column 36: expected ORDER BY"),
        ("SELECT Id FROM Contact /* x */", "line 1, column 24: unexpected character '/'"),
        ("SELECT Id FROM Contact WHERE Name = 'x' OR '1'='1'", "line 1, column 44: expected field name"),
        ("SELECT Id FROM Contact WHERE Name = ''); DROP TABLE records; --'", "line 1, column 39: expected"),
        ("SELECT Ïd FROM Contact", "line 1, column 8: unexpected character 'Ï'"),
    ],
)
def test_hostile_text_is_a_query_error(soql: str, message: str) -> None:
    assert parse_error(soql).startswith(message)


def test_sql_inside_a_string_literal_is_just_a_value() -> None:
    with pytest.raises(QueryError, match="column 39"):  # '' is not an escape in SOQL
        where("Name = '''); DROP TABLE records; --'")
    assert where(r"Name = '\'); DROP TABLE records; --'") == eq("Name", "'); DROP TABLE records; --")


def test_deep_parentheses_are_capped() -> None:
    ok = "(" * MAX_DEPTH + "A = 1" + ")" * MAX_DEPTH
    assert where(ok) == eq("A", 1)
    message = parse_error("SELECT Id FROM C WHERE " + "(" * 10_000 + "A = 1" + ")" * 10_000)
    assert message == f"line 1, column {24 + MAX_DEPTH}: conditions nested more than {MAX_DEPTH} levels deep"


def test_deep_not_chains_are_capped() -> None:
    assert isinstance(where("NOT " * MAX_DEPTH + "A = 1"), Not)
    message = parse_error("SELECT Id FROM C WHERE " + "NOT " * 10_000 + "A = 1")
    assert f"nested more than {MAX_DEPTH} levels deep" in message


def test_nesting_counts_and_or_levels_not_just_parentheses() -> None:
    # Each "x OR y AND (...)" level nests an AND inside an OR: two levels per parenthesis.
    condition = "A = 1"
    for _ in range(MAX_DEPTH // 2):
        condition = f"B = 1 OR C = 1 AND ({condition})"
    assert isinstance(where(condition), Or)
    message = parse_error(f"SELECT Id FROM C WHERE B = 1 OR C = 1 AND ({condition})")
    assert message == f"line 1, column 33: conditions nested more than {MAX_DEPTH} levels deep"


def test_number_of_conditions_is_capped() -> None:
    many = " OR ".join(["A = 1"] * MAX_CONDITIONS)
    assert isinstance(where(many), Or)
    message = parse_error(f"SELECT Id FROM C WHERE {many} OR A = 1")
    assert f"WHERE has more than {MAX_CONDITIONS} conditions" in message


def test_query_length_is_capped() -> None:
    soql = "SELECT Id FROM C WHERE A = '" + "x" * MAX_QUERY_LENGTH + "'"
    assert parse_error(soql) == f"query is longer than {MAX_QUERY_LENGTH} characters"


def test_huge_string_literal_within_the_cap_is_fine() -> None:
    assert where("A = '" + "x" * 90_000 + "'") == eq("A", "x" * 90_000)


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        ("9223372036854775808", "integer literal out of 64-bit range"),
        ("9" * 41, "number literal longer than 40 characters"),
        ("9" * 5000, "number literal longer than 40 characters"),
    ],
)
def test_huge_numbers(literal: str, message: str) -> None:
    assert parse_error(f"SELECT Id FROM C WHERE A = {literal}") == f"line 1, column 28: {message}"


def test_int64_bounds_are_accepted() -> None:
    assert where("A = 9223372036854775807") == eq("A", 2**63 - 1)
    assert where("A = -9223372036854775808") == eq("A", -(2**63))


# --- binds --------------------------------------------------------------------------------


def test_bind_lookups() -> None:
    binds = {"one": "x", "many": ["a", 1, None], "n": 5}
    assert bind_scalar(binds, Bind("one")) == "x"
    assert bind_list(binds, Bind("many")) == ["a", 1, None]
    assert bind_count(binds, Bind("n")) == 5
    assert bind_count(binds, 7) == 7


def test_bind_errors_name_the_bind_and_its_position() -> None:
    query = parse("SELECT Id FROM C WHERE A = :foo")
    assert isinstance(query.where, Comparison)
    bind = query.where.value
    assert isinstance(bind, Bind)
    with pytest.raises(QueryError, match=r"^line 1, column 28: unknown bind variable :foo$"):
        bind_scalar({}, bind)
    with pytest.raises(QueryError, match="is a list; expected a single value"):
        bind_scalar({"foo": [1]}, bind)
    with pytest.raises(QueryError, match="must be a list for IN"):
        bind_list({"foo": 1}, bind)
    with pytest.raises(QueryError, match="unsupported value of type dict"):
        bind_scalar({"foo": {"a": 1}}, bind)
    with pytest.raises(QueryError, match="integer out of 64-bit range"):
        bind_scalar({"foo": 2**64}, bind)
    with pytest.raises(QueryError, match="number must be finite"):
        bind_list({"foo": [float("nan")]}, bind)
    for bad in (-1, True, 1.5, "3"):
        with pytest.raises(QueryError, match="must be a non-negative integer"):
            bind_count({"foo": bad}, bind)


# --- INCLUDES / EXCLUDES and dates ----------------------------------------------------------


def test_includes_and_excludes() -> None:
    assert where("Tags__c INCLUDES ('a', 'b;c')") == Includes(Field(("Tags__c",)), (Constant("a"), Constant("b;c")))
    assert where("Tags__c excludes :t") == Includes(Field(("Tags__c",)), Bind("t"), negated=True)
    assert parse("SELECT Includes FROM X").fields == (Field(("Includes",)),)  # still usable as a name


def test_date_and_datetime_literals() -> None:
    assert where("D = 2026-01-31") == Comparison(Field(("D",)), "=", Temporal(date(2026, 1, 31)))
    assert where("D > 2026-01-31T10:00:00Z") == Comparison(
        Field(("D",)), ">", Temporal(datetime(2026, 1, 31, 10, tzinfo=UTC))
    )
    assert where("D < 2026-01-31T12:30:00.5+02:00") == Comparison(
        Field(("D",)), "<", Temporal(datetime(2026, 1, 31, 10, 30, 0, 500_000, tzinfo=UTC))
    )
    assert where("D IN (2026-01-01, NULL)") == In(Field(("D",)), (Temporal(date(2026, 1, 1)), Constant(None)))


def test_relative_date_literals() -> None:
    assert where("D = today") == Comparison(Field(("D",)), "=", DateLiteral("TODAY"))
    assert where("D >= LAST_N_DAYS:30") == Comparison(Field(("D",)), ">=", DateLiteral("LAST_N_DAYS", 30))
    assert where("D < next_n_days:0") == Comparison(Field(("D",)), "<", DateLiteral("NEXT_N_DAYS", 0))
    assert parse("SELECT Today, Last_N_Days FROM X").fields == (Field(("Today",)), Field(("Last_N_Days",)))


@pytest.mark.parametrize(
    ("literal", "start", "end"),
    [
        ("TODAY", date(2026, 3, 4), date(2026, 3, 5)),
        ("YESTERDAY", date(2026, 3, 3), date(2026, 3, 4)),
        ("TOMORROW", date(2026, 3, 5), date(2026, 3, 6)),
        ("LAST_N_DAYS:7", date(2026, 2, 25), date(2026, 3, 5)),
        ("NEXT_N_DAYS:7", date(2026, 3, 5), date(2026, 3, 12)),
        ("THIS_WEEK", date(2026, 3, 1), date(2026, 3, 8)),  # 2026-03-04 is a Wednesday; weeks start Sunday
        ("LAST_WEEK", date(2026, 2, 22), date(2026, 3, 1)),
        ("THIS_MONTH", date(2026, 3, 1), date(2026, 4, 1)),
        ("LAST_MONTH", date(2026, 2, 1), date(2026, 3, 1)),
        ("NEXT_MONTH", date(2026, 4, 1), date(2026, 5, 1)),
        ("THIS_YEAR", date(2026, 1, 1), date(2027, 1, 1)),
        ("LAST_YEAR", date(2025, 1, 1), date(2026, 1, 1)),
    ],
)
def test_date_ranges(literal: str, start: date, end: date) -> None:
    condition = where(f"D = {literal}")
    assert isinstance(condition, Comparison) and isinstance(condition.value, DateLiteral)
    assert date_range(condition.value, date(2026, 3, 4)) == (start, end)


def test_december_rolls_into_the_next_year() -> None:
    assert date_range(DateLiteral("NEXT_MONTH"), date(2026, 12, 15)) == (date(2027, 1, 1), date(2027, 2, 1))


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("D = 2026-02-30", "line 1, column 34: invalid date or datetime literal 2026-02-30"),
        ("D = 2026-01-31T10:00:00", "line 1, column 34: datetime literal 2026-01-31T10:00:00 needs a time zone"),
        ("D = 2026-01-31T25:00:00Z", "line 1, column 34: invalid date or datetime literal"),
        ("D = LAST_N_DAYS:", "line 1, column 46: LAST_N_DAYS needs a number of days from 0 to"),
        (f"D = LAST_N_DAYS:{MAX_N_DAYS + 1}", "line 1, column 46: LAST_N_DAYS needs a number of days"),
        ("D LIKE TODAY", "line 1, column 37: LIKE needs a string pattern"),
        ("D LIKE 2026-01-01", "line 1, column 37: LIKE needs a string pattern"),
        ("T INCLUDES ('a', 1)", "line 1, column 47: INCLUDES needs string values"),
        ("T EXCLUDES (NULL)", "line 1, column 42: EXCLUDES needs string values"),
        ("T INCLUDES 'a'", "line 1, column 41: expected '(' or :bind, found ''a''"),
        ("D IN (TODAY)", "line 1, column 36: expected a value (string, number, date"),
    ],
)
def test_date_and_includes_errors(condition: str, message: str) -> None:
    assert parse_error(f"SELECT Id FROM Contact WHERE {condition}").startswith(message)
