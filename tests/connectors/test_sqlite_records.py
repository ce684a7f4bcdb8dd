"""SqliteRecords: SOQL over a real SQLite file, DML with its errors, and transaction isolation."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from circuit_host.connectors.records import DmlOp, DmlResult, RecordsConnector, RecordsTransaction
from circuit_host.connectors.soql import MAX_CONDITIONS, MAX_DEPTH
from circuit_host.connectors.sqlite_records import (
    SqliteRecords,
    SqliteTransaction,
    new_record_id,
    record_id_prefix,
)
from circuit_host.errors import CircuitError, DmlError, QueryError

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteRecords]:
    with SqliteRecords(tmp_path / "records.sqlite3") as records:
        yield records


@pytest.fixture
def tx(store: SqliteRecords) -> Iterator[SqliteTransaction]:
    with store.begin() as transaction:
        yield transaction


def insert(tx: RecordsTransaction, object_name: str, *rows: dict[str, Any]) -> list[str]:
    return tx.dml(DmlOp.INSERT, object_name, list(rows)).ids


def rows(tx: RecordsTransaction, soql: str, **binds: Any) -> list[dict[str, Any]]:
    return tx.query(soql, binds, 1000).records


def names(tx: RecordsTransaction, where: str, **binds: Any) -> list[str]:
    soql = f"SELECT Name FROM Account WHERE {where} ORDER BY Name"
    return [r["Name"] for r in rows(tx, soql, **binds)]


def dml_error(tx: RecordsTransaction, op: DmlOp, object_name: str, data: list[Any], **kw: Any) -> str:
    with pytest.raises(DmlError) as info:
        tx.dml(op, object_name, data, **kw)
    return str(info.value)


def query_error(tx: RecordsTransaction, soql: str, **binds: Any) -> str:
    with pytest.raises(QueryError) as info:
        tx.query(soql, binds, 1000)
    return str(info.value)


@pytest.fixture
def accounts(tx: SqliteTransaction) -> SqliteTransaction:
    insert(
        tx,
        "Account",
        {"Name": "Acme", "Employees": 500, "Revenue": 1.5e6, "Active": True, "City": "Paris"},
        {"Name": "bolt", "Employees": 20, "Revenue": 2.5e5, "Active": False, "City": None},
        {"Name": "Cobalt", "Employees": 75, "Active": True},
        {"Name": "delta_50%", "Employees": 5},
    )
    return tx


def test_is_a_records_connector(store: SqliteRecords) -> None:
    connector: RecordsConnector = store
    transaction: RecordsTransaction = connector.begin()
    transaction.close()


# --- ids ---------------------------------------------------------------------------------


def test_ids_are_18_characters_with_the_object_prefix() -> None:
    for object_name, prefix in [
        ("Contact", "003"),
        ("Account", "001"),
        ("Lead", "00Q"),
        ("Opportunity", "006"),
        ("Task", "00T"),
        ("User", "005"),
        ("contact", "003"),
    ]:
        record_id = new_record_id(object_name)
        assert len(record_id) == 18 and record_id.startswith(prefix) and record_id.isalnum()
    assert record_id_prefix("Invoice__c") == record_id_prefix("INVOICE__C")
    assert len(record_id_prefix("Invoice__c")) == 3
    assert record_id_prefix("Invoice__c") != record_id_prefix("Payment__c")
    assert new_record_id("Contact") != new_record_id("Contact")


# --- queries -----------------------------------------------------------------------------


def test_records_have_exactly_the_selected_fields_plus_id_in_select_casing(accounts: SqliteTransaction) -> None:
    result = accounts.query("SELECT name, EMPLOYEES, Missing__c FROM account WHERE Name = 'Acme'", {}, 10)
    assert result.total_size == 1
    (record,) = result.records
    assert set(record) == {"Id", "name", "EMPLOYEES", "Missing__c"}
    assert record["name"] == "Acme" and record["EMPLOYEES"] == 500 and record["Missing__c"] is None
    assert record["Id"].startswith("001")


def test_values_keep_their_types(accounts: SqliteTransaction) -> None:
    (record,) = rows(accounts, "SELECT Name, Employees, Revenue, Active, City FROM Account WHERE Name = 'bolt'")
    assert record["Active"] is False
    assert type(record["Employees"]) is int and type(record["Revenue"]) is float
    assert record["City"] is None


def test_system_fields(accounts: SqliteTransaction) -> None:
    (record,) = rows(accounts, "SELECT Id, CreatedDate, LastModifiedDate, IsDeleted FROM Account LIMIT 1")
    assert ISO_UTC.fullmatch(record["CreatedDate"]) and ISO_UTC.fullmatch(record["LastModifiedDate"])
    assert record["IsDeleted"] is False


def test_unknown_object_has_no_records(tx: SqliteTransaction) -> None:
    assert tx.query("SELECT Id FROM Nothing__c", {}, 10).records == []


def test_objects_do_not_mix(accounts: SqliteTransaction) -> None:
    insert(accounts, "Contact", {"Name": "Acme"})
    assert len(rows(accounts, "SELECT Id FROM Contact")) == 1
    assert len(rows(accounts, "SELECT Id FROM Account")) == 4


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Employees = 20", ["bolt"]),
        ("Employees != 20", ["Acme", "Cobalt", "delta_50%"]),
        ("Employees <> 20", ["Acme", "Cobalt", "delta_50%"]),
        ("Employees < 75", ["bolt", "delta_50%"]),
        ("Employees <= 75", ["bolt", "Cobalt", "delta_50%"]),
        ("Employees > 75", ["Acme"]),
        ("Employees >= 75", ["Acme", "Cobalt"]),
        ("Revenue > 1000000", ["Acme"]),
        ("Revenue = 250000", ["bolt"]),
        ("Employees = 20.0", ["bolt"]),
        ("Active = TRUE", ["Acme", "Cobalt"]),
        ("Active = false", ["bolt"]),
        ("Active != TRUE", ["bolt", "delta_50%"]),
        ("City = NULL", ["bolt", "Cobalt", "delta_50%"]),
        ("City != NULL", ["Acme"]),
        ("Name = 'ACME'", ["Acme"]),
        ("Name > 'b'", ["bolt", "Cobalt", "delta_50%"]),
        ("Name IN ('acme', 'BOLT', 'zeta')", ["Acme", "bolt"]),
        ("Employees IN (5, 75)", ["Cobalt", "delta_50%"]),
        ("Name NOT IN ('acme', 'bolt')", ["Cobalt", "delta_50%"]),
        ("City IN ('Paris', NULL)", ["Acme", "bolt", "Cobalt", "delta_50%"]),
        ("City NOT IN ('Paris')", ["bolt", "Cobalt", "delta_50%"]),
        ("City NOT IN ('Paris', NULL)", []),
        ("Name LIKE 'a%'", ["Acme"]),
        ("Name LIKE '%O%'", ["bolt", "Cobalt"]),
        ("Name LIKE '_olt'", ["bolt"]),
        ("Name LIKE 'delta\\_50\\%'", ["delta_50%"]),
        ("Name LIKE 'delta\\_5%'", ["delta_50%"]),
        ("Name LIKE 'delta_5_\\%'", ["delta_50%"]),
        ("Name LIKE 'Acm'", []),
        ("City LIKE '%'", ["Acme"]),
    ],
)
def test_operators(accounts: SqliteTransaction, where: str, expected: list[str]) -> None:
    assert sorted(names(accounts, where), key=str.lower) == sorted(expected, key=str.lower)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        # NOT > AND > OR: A OR (NOT B AND C)
        ("Name = 'Acme' OR NOT Active = TRUE AND Employees > 10", ["Acme", "bolt"]),
        ("(Name = 'Acme' OR NOT Active = TRUE) AND Employees > 10", ["Acme", "bolt"]),
        ("(Name = 'Acme' OR NOT Active = TRUE) AND Employees > 100", ["Acme"]),
        ("NOT (Name = 'Acme' OR Name = 'bolt')", ["Cobalt", "delta_50%"]),
        ("NOT NOT Name = 'Acme'", ["Acme"]),
        ("Employees > 10 AND Employees < 100 AND Active = TRUE", ["Cobalt"]),
        # A null field is != every value, and NOT of a comparison with it is true.
        ("NOT City = 'Paris'", ["bolt", "Cobalt", "delta_50%"]),
        ("NOT City != 'Paris'", ["Acme"]),
        ("City != 'Paris'", ["bolt", "Cobalt", "delta_50%"]),
        ("NOT Revenue > 0", ["Cobalt", "delta_50%"]),
    ],
)
def test_logic_and_nulls(accounts: SqliteTransaction, where: str, expected: list[str]) -> None:
    assert sorted(names(accounts, where), key=str.lower) == sorted(expected, key=str.lower)


def test_id_comparisons(accounts: SqliteTransaction) -> None:
    acme_id = rows(accounts, "SELECT Id FROM Account WHERE Name = 'Acme'")[0]["Id"]
    assert names(accounts, "Id = :id", id=acme_id) == ["Acme"]
    assert names(accounts, "Id = :id", id=acme_id.lower()) == []  # ids are case-sensitive
    assert names(accounts, "Id IN :ids", ids=[acme_id, "001000000000000AAA"]) == ["Acme"]
    assert len(names(accounts, "Id != :id", id=acme_id)) == 3


def test_binds(accounts: SqliteTransaction) -> None:
    assert names(accounts, "Name = :n", n="bolt") == ["bolt"]
    assert names(accounts, "Employees >= :n AND Active = :a", n=50, a=True) == ["Acme", "Cobalt"]
    assert names(accounts, "Name IN :names", names=["Acme", "Cobalt"]) == ["Acme", "Cobalt"]
    assert names(accounts, "Name IN :names", names=[]) == []
    assert len(names(accounts, "Name NOT IN :names", names=[])) == 4
    assert names(accounts, "City = :c", c=None) == ["bolt", "Cobalt", "delta_50%"]
    assert names(accounts, "Name LIKE :p", p="%lt") == ["bolt", "Cobalt"]


def test_binds_are_values_never_sql(accounts: SqliteTransaction) -> None:
    hostile = ["'; DROP TABLE records; --", "') OR 1=1 --", 'x" OR "1"="1', "%' OR '1'='1"]
    for value in hostile:
        assert names(accounts, "Name = :n", n=value) == []
        assert names(accounts, "Name IN :n", n=[value]) == []
        assert names(accounts, "Name LIKE :n", n=value) == []
    assert len(rows(accounts, "SELECT Id FROM Account")) == 4


def test_hostile_field_and_string_values_are_stored_verbatim(tx: SqliteTransaction) -> None:
    evil = "'); DROP TABLE records; --\"\\"
    insert(tx, "Account", {"Name": evil})
    assert rows(tx, "SELECT Name FROM Account WHERE Name = :n", n=evil)[0]["Name"] == evil
    assert names(tx, "Name LIKE '%DROP TABLE%'") == [evil]


@pytest.mark.parametrize(
    ("soql", "binds", "message"),
    [
        ("SELECT Id FROM Account WHERE Name = :foo", {}, "line 1, column 37: unknown bind variable :foo"),
        ("SELECT Id FROM Account WHERE Name = :x", {"x": [1]}, "is a list; expected a single value"),
        ("SELECT Id FROM Account WHERE Name IN :x", {"x": "a"}, "must be a list for IN"),
        ("SELECT Id FROM Account WHERE Name < :x", {"x": None}, "NULL can only be compared with = or !=, not <"),
        ("SELECT Id FROM Account WHERE Name LIKE :x", {"x": 5}, "LIKE needs a string pattern"),
        ("SELECT Id FROM Account WHERE Name = :x", {"x": b"bytes"}, "unsupported value of type bytes"),
        ("SELECT Id FROM Account LIMIT :n", {"n": -1}, "must be a non-negative integer"),
        ("SELECT Id FROM Account OFFSET :n", {"n": "1"}, "must be a non-negative integer"),
        ("SELECT Account.Name FROM Contact", {}, "line 1, column 8: parent field Account.Name is not supported yet"),
        (
            "SELECT Id FROM Contact WHERE Account.Name = 'x'",
            {},
            "line 1, column 30: parent field Account.Name is not supported yet",
        ),
        ("SELECT Id FROM Contact ORDER BY Owner.Name", {}, "parent field Owner.Name is not supported yet"),
        ("SELECT Id FROM Contact WHERE Name = 'x'; DROP TABLE records", {}, "unexpected character ';'"),
        ("SELECT Id FROM Contact WHERE Name = 'x", {}, "unterminated string literal"),
    ],
)
def test_query_errors(tx: SqliteTransaction, soql: str, binds: dict[str, Any], message: str) -> None:
    assert message in query_error(tx, soql, **binds)


def test_table_survives_every_hostile_query(accounts: SqliteTransaction) -> None:
    for soql in [
        "SELECT Id FROM Account'); DROP TABLE records; --",
        'SELECT "data" FROM Account',
        "SELECT Id FROM records",
        "SELECT Id FROM Account WHERE data = 'x'",
        "SELECT Id FROM Account WHERE Name = 'x' OR 1 = 1",
    ]:
        with contextlib.suppress(QueryError):
            accounts.query(soql, {}, 10)
    assert len(rows(accounts, "SELECT Id FROM Account")) == 4
    assert rows(accounts, "SELECT Id FROM records") == []  # just an object name with no records


def test_wide_and_deep_conditions_run(accounts: SqliteTransaction) -> None:
    # The parser's caps keep every query inside SQLite's expression-depth and parser-stack limits.
    wide = " OR ".join(f"Employees = {n}" for n in range(1, MAX_CONDITIONS + 1))
    assert len(names(accounts, wide)) == 4
    assert names(accounts, "(" * MAX_DEPTH + "Name = 'Acme'" + ")" * MAX_DEPTH) == ["Acme"]
    assert names(accounts, "NOT " * MAX_DEPTH + "Name = 'Acme'") == ["Acme"]
    deep = "Name = 'Acme'"
    for _ in range(MAX_DEPTH // 2):  # an AND and an OR level each
        deep = f"{' AND '.join(['Employees > 0'] * 20)} AND (Name = 'x' OR {deep})"
    assert names(accounts, deep) == ["Acme"]
    deep = "Name IN ('Acme', NULL)"
    for _ in range(MAX_DEPTH // 3):  # a NOT, an OR and a NOT level each
        deep = f"NOT (Name = 'x' OR NOT {deep})"
    assert names(accounts, deep) == ["Acme"]


def test_large_in_list_bind(accounts: SqliteTransaction) -> None:
    many = [f"name{n}" for n in range(100_000)] + ["Acme"]
    assert names(accounts, "Name IN :many", many=many) == ["Acme"]


def test_deep_nesting_is_a_query_error_not_a_recursion_error(tx: SqliteTransaction) -> None:
    soql = "SELECT Id FROM Account WHERE " + "(" * 5000 + "Name = 'x'" + ")" * 5000
    assert f"nested more than {MAX_DEPTH} levels deep" in query_error(tx, soql)


# --- ORDER BY, LIMIT, OFFSET, COUNT() and max_rows ---------------------------------------


def test_order_by_defaults_to_ascending_nulls_first(accounts: SqliteTransaction) -> None:
    got = [r["Name"] for r in rows(accounts, "SELECT Name FROM Account ORDER BY Revenue")]
    assert got == ["Cobalt", "delta_50%", "bolt", "Acme"]


def test_order_by_direction_and_nulls(accounts: SqliteTransaction) -> None:
    def order(clause: str) -> list[str]:
        return [r["Name"] for r in rows(accounts, f"SELECT Name FROM Account ORDER BY {clause}")]

    assert order("Revenue DESC") == ["Cobalt", "delta_50%", "Acme", "bolt"]
    assert order("Revenue DESC NULLS LAST") == ["Acme", "bolt", "Cobalt", "delta_50%"]
    assert order("Revenue ASC NULLS LAST") == ["bolt", "Acme", "Cobalt", "delta_50%"]
    assert order("Name") == ["Acme", "bolt", "Cobalt", "delta_50%"]  # case-insensitive
    assert order("Active DESC NULLS LAST, Name DESC") == ["Cobalt", "Acme", "bolt", "delta_50%"]


def test_without_order_by_records_come_in_insertion_order(accounts: SqliteTransaction) -> None:
    assert [r["Name"] for r in rows(accounts, "SELECT Name FROM Account")] == ["Acme", "bolt", "Cobalt", "delta_50%"]


def test_limit_and_offset(accounts: SqliteTransaction) -> None:
    def page(clause: str, **binds: Any) -> list[str]:
        return [r["Name"] for r in rows(accounts, f"SELECT Name FROM Account ORDER BY Name {clause}", **binds)]

    assert page("LIMIT 2") == ["Acme", "bolt"]
    assert page("LIMIT 2 OFFSET 1") == ["bolt", "Cobalt"]
    assert page("OFFSET 3") == ["delta_50%"]
    assert page("LIMIT 0") == []
    assert page("LIMIT :n OFFSET :o", n=1, o=2) == ["Cobalt"]
    assert page("OFFSET 10") == []


def test_count(accounts: SqliteTransaction) -> None:
    assert accounts.query("SELECT COUNT() FROM Account", {}, 0).total_size == 4
    result = accounts.query("SELECT COUNT() FROM Account WHERE Active = TRUE", {}, 0)
    assert (result.records, result.total_size) == ([], 2)
    assert accounts.query("SELECT COUNT() FROM Account LIMIT 3", {}, 0).total_size == 3
    assert accounts.query("SELECT COUNT() FROM Account OFFSET 3", {}, 0).total_size == 1


def test_max_rows_returns_at_most_one_extra_record(accounts: SqliteTransaction) -> None:
    result = accounts.query("SELECT Name FROM Account", {}, 2)
    assert len(result.records) == 3 and result.total_size == 3  # 3 > max_rows: the caller refuses
    assert len(accounts.query("SELECT Name FROM Account", {}, 4).records) == 4
    assert len(accounts.query("SELECT Name FROM Account", {}, 0).records) == 1
    assert len(accounts.query("SELECT Name FROM Account LIMIT 1", {}, 2).records) == 1
    with pytest.raises(ValueError):
        accounts.query("SELECT Name FROM Account", {}, -1)


# --- DML ---------------------------------------------------------------------------------


def test_dml_op_values_match_the_abi() -> None:
    assert [op.value for op in DmlOp] == [0, 1, 2, 3, 4]
    assert [op.name.lower() for op in DmlOp] == ["insert", "update", "upsert", "delete", "undelete"]


def test_insert(tx: SqliteTransaction) -> None:
    result = tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "A"}, {"LastName": "B", "Score": 3}])
    assert result.created == [True, True] and len(set(result.ids)) == 2
    assert all(i.startswith("003") and len(i) == 18 for i in result.ids)
    got = rows(tx, "SELECT Id, LastName, Score FROM Contact")
    assert got == [
        {"Id": result.ids[0], "LastName": "A", "Score": None},
        {"Id": result.ids[1], "LastName": "B", "Score": 3},
    ]


def test_insert_accepts_the_abi_integer(tx: SqliteTransaction) -> None:
    assert tx.dml(0, "Contact", [{"LastName": "A"}]).created == [True]  # type: ignore[arg-type]


def test_empty_statement_does_nothing(tx: SqliteTransaction) -> None:
    assert tx.dml(DmlOp.INSERT, "Contact", []) == DmlResult([], [])


def test_field_names_are_case_insensitive(tx: SqliteTransaction) -> None:
    (record_id,) = insert(tx, "Contact", {"lastname": "a"})
    tx.dml(DmlOp.UPDATE, "contact", [{"ID": record_id, "LASTNAME": "b"}])
    assert rows(tx, "SELECT LastName FROM CONTACT") == [{"Id": record_id, "LastName": "b"}]


def test_update_merges_fields_and_touches_last_modified(tx: SqliteTransaction) -> None:
    (record_id,) = insert(tx, "Contact", {"LastName": "A", "Email": "a@x.com"})
    result = tx.dml(DmlOp.UPDATE, "Contact", [{"Id": record_id, "Email": None, "Title": "CEO"}])
    assert result == DmlResult([record_id], [False])
    (record,) = rows(tx, "SELECT LastName, Email, Title, CreatedDate, LastModifiedDate FROM Contact")
    assert (record["LastName"], record["Email"], record["Title"]) == ("A", None, "CEO")
    assert record["LastModifiedDate"] >= record["CreatedDate"]


def test_upsert_by_id(tx: SqliteTransaction) -> None:
    (existing,) = insert(tx, "Contact", {"LastName": "A"})
    result = tx.dml(DmlOp.UPSERT, "Contact", [{"Id": existing, "LastName": "A2"}, {"LastName": "B"}])
    assert result.ids[0] == existing and result.created == [False, True]
    assert [r["LastName"] for r in rows(tx, "SELECT LastName FROM Contact")] == ["A2", "B"]


def test_upsert_by_external_id(tx: SqliteTransaction) -> None:
    (existing,) = insert(tx, "Contact", {"Email": "a@x.com", "LastName": "A"})
    result = tx.dml(
        DmlOp.UPSERT,
        "Contact",
        [{"Email": "A@X.COM", "LastName": "A2"}, {"Email": "b@x.com", "LastName": "B"}],
        external_id="Email",
    )
    assert result.ids[0] == existing and result.created == [False, True]
    assert [r["LastName"] for r in rows(tx, "SELECT LastName FROM Contact")] == ["A2", "B"]


def test_delete_and_undelete(tx: SqliteTransaction) -> None:
    a, b = insert(tx, "Contact", {"LastName": "A"}, {"LastName": "B"})
    assert tx.dml(DmlOp.DELETE, "Contact", [{"Id": a, "LastName": "ignored"}]) == DmlResult([a], [False])
    assert [r["Id"] for r in rows(tx, "SELECT Id FROM Contact")] == [b]
    assert tx.query("SELECT COUNT() FROM Contact", {}, 0).total_size == 1
    assert tx.dml(DmlOp.UNDELETE, "Contact", [{"Id": a}]) == DmlResult([a], [False])
    assert [r["LastName"] for r in rows(tx, "SELECT LastName FROM Contact")] == ["A", "B"]


def test_deleted_records_are_not_matched_by_upsert(tx: SqliteTransaction) -> None:
    (old,) = insert(tx, "Contact", {"Email": "a@x.com"})
    tx.dml(DmlOp.DELETE, "Contact", [{"Id": old}])
    result = tx.dml(DmlOp.UPSERT, "Contact", [{"Email": "a@x.com"}], external_id="Email")
    assert result.created == [True] and result.ids[0] != old


@pytest.mark.parametrize(
    ("op", "data", "message"),
    [
        (
            DmlOp.INSERT,
            [{"LastName": "ok"}, {"Id": "003000000000000AAA"}],
            "row 1: field Id: must not be set on insert",
        ),
        (DmlOp.INSERT, [{"LastName": "ok"}, "not a map"], "row 1: expected a map of field names to values"),
        (DmlOp.INSERT, [{"Last Name": "x"}], "row 0: invalid field name 'Last Name'"),
        (DmlOp.INSERT, [{"Name'; DROP TABLE records; --": "x"}], "row 0: invalid field name"),
        (DmlOp.INSERT, [{"a.b": "x"}], "row 0: invalid field name 'a.b'"),
        (DmlOp.INSERT, [{1: "x"}], "row 0: invalid field name 1"),
        (DmlOp.INSERT, [{"Name": "x", "NAME": "y"}], "row 0: field NAME: duplicate of field Name"),
        (DmlOp.INSERT, [{"Tags": ["a"]}], "row 0: field Tags: unsupported value of type list"),
        (DmlOp.INSERT, [{"Data": {"a": 1}}], "row 0: field Data: unsupported value of type dict"),
        (DmlOp.INSERT, [{"Blob": b"x"}], "row 0: field Blob: unsupported value of type bytes"),
        (DmlOp.INSERT, [{"Big": 2**63}], "row 0: field Big: integer out of 64-bit range"),
        (DmlOp.INSERT, [{"X": float("inf")}], "row 0: field X: number must be finite"),
        (DmlOp.INSERT, [{"X": float("nan")}], "row 0: field X: number must be finite"),
        (DmlOp.INSERT, [{"CreatedDate": "2020-01-01T00:00:00.000Z"}], "row 0: field CreatedDate: is not writeable"),
        (DmlOp.INSERT, [{"isdeleted": True}], "row 0: field isdeleted: is not writeable"),
        (DmlOp.UPDATE, [{"LastName": "x"}], "row 0: field Id: required for update"),
        (DmlOp.UPDATE, [{"Id": 3}], "row 0: field Id: must be a string"),
        (DmlOp.UPDATE, [{"Id": "003000000000000AAA"}], "row 0: field Id: no Contact with Id '003000000000000AAA'"),
        (DmlOp.DELETE, [{}], "row 0: field Id: required for delete"),
        (DmlOp.UNDELETE, [{}], "row 0: field Id: required for undelete"),
        (DmlOp.DELETE, [{"Id": "x" * 1000}], "no Contact with Id 'xxxxxxxx"),
    ],
)
def test_dml_validation_errors(tx: SqliteTransaction, op: DmlOp, data: list[Any], message: str) -> None:
    assert message in dml_error(tx, op, "Contact", data)


def test_invalid_object_names(tx: SqliteTransaction) -> None:
    for bad in ["", "Contact; DROP TABLE records", "Account.Name", "a b", "9Lives"]:
        assert "invalid object name" in dml_error(tx, DmlOp.INSERT, bad, [{}])
    with pytest.raises(DmlError, match="invalid object name"):
        tx.seed("records'--", [{}])


def test_ids_must_belong_to_the_object(tx: SqliteTransaction) -> None:
    (account,) = insert(tx, "Account", {"Name": "A"})
    message = dml_error(tx, DmlOp.UPDATE, "Contact", [{"Id": account, "LastName": "x"}])
    assert message == f"row 0: field Id: no Contact with Id '{account}'"


def test_delete_and_undelete_check_the_recycle_bin(tx: SqliteTransaction) -> None:
    (record_id,) = insert(tx, "Contact", {"LastName": "A"})
    assert dml_error(tx, DmlOp.UNDELETE, "Contact", [{"Id": record_id}]) == (
        f"row 0: field Id: Contact {record_id} is not in the recycle bin"
    )
    tx.dml(DmlOp.DELETE, "Contact", [{"Id": record_id}])
    assert dml_error(tx, DmlOp.DELETE, "Contact", [{"Id": record_id}]) == (
        f"row 0: field Id: Contact {record_id} is in the recycle bin"
    )
    assert "is in the recycle bin" in dml_error(tx, DmlOp.UPDATE, "Contact", [{"Id": record_id}])
    assert "is in the recycle bin" in dml_error(tx, DmlOp.UPSERT, "Contact", [{"Id": record_id}])


def test_a_statement_may_not_target_a_record_twice(tx: SqliteTransaction) -> None:
    (record_id,) = insert(tx, "Contact", {"LastName": "A"})
    twice = [{"Id": record_id}, {"Id": record_id}]
    for op in (DmlOp.UPDATE, DmlOp.UPSERT, DmlOp.DELETE):
        assert dml_error(tx, op, "Contact", twice) == "row 1: field Id: duplicate of row 0"


def test_upsert_errors(tx: SqliteTransaction) -> None:
    a, b = insert(tx, "Contact", {"Email": "dup@x.com"}, {"Email": "DUP@x.com"})
    assert dml_error(tx, DmlOp.UPSERT, "Contact", [{"Email": "dup@x.com"}], external_id="Email") == (
        "row 0: field Email: more than one Contact has Email 'dup@x.com'"
    )
    assert dml_error(tx, DmlOp.UPSERT, "Contact", [{"LastName": "x"}], external_id="Email") == (
        "row 0: field Email: upsert key must have a value"
    )
    assert (
        dml_error(tx, DmlOp.UPSERT, "Contact", [{"Key": "k1"}, {"Key": "K1"}], external_id="Key")
        == "row 1: field Key: duplicate upsert key, also in row 0"
    )
    assert "invalid field name" in dml_error(tx, DmlOp.UPSERT, "Contact", [{}], external_id="E'; --")
    assert "cannot be an upsert key" in dml_error(tx, DmlOp.UPSERT, "Contact", [{}], external_id="CreatedDate")
    tx.dml(DmlOp.UPDATE, "Contact", [{"Id": b, "Email": "b@x.com"}])
    message = dml_error(tx, DmlOp.UPSERT, "Contact", [{"Id": b, "Email": "dup@x.com"}], external_id="Email")
    assert message == "row 0: field Id: does not match the Contact found by Email"
    assert "no Contact with Id" in dml_error(tx, DmlOp.UPSERT, "Contact", [{"Id": "003000000000000AAA"}])
    assert a


def test_a_failed_statement_writes_nothing(tx: SqliteTransaction) -> None:
    (record_id,) = insert(tx, "Contact", {"LastName": "A"})
    with pytest.raises(DmlError, match="row 2"):
        tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "B"}, {"LastName": "C"}, {"Id": record_id}])
    with pytest.raises(DmlError, match="row 1"):
        tx.dml(DmlOp.UPDATE, "Contact", [{"Id": record_id, "LastName": "changed"}, {"LastName": "no id"}])
    with pytest.raises(DmlError, match="row 1"):
        tx.dml(DmlOp.DELETE, "Contact", [{"Id": record_id}, {"Id": "003000000000000AAA"}])
    assert rows(tx, "SELECT LastName, IsDeleted FROM Contact") == [
        {"Id": record_id, "LastName": "A", "IsDeleted": False}
    ]
    insert(tx, "Contact", {"LastName": "after"})  # the transaction is still usable
    assert len(rows(tx, "SELECT Id FROM Contact")) == 2


# --- seed --------------------------------------------------------------------------------


def test_seed_keeps_given_ids_and_assigns_missing_ones(tx: SqliteTransaction) -> None:
    given = "003000000000001AAA"
    ids = tx.seed("Contact", [{"Id": given, "LastName": "A"}, {"LastName": "B"}])
    assert ids[0] == given and ids[1].startswith("003") and len(ids[1]) == 18
    assert [r["Id"] for r in rows(tx, "SELECT Id FROM Contact")] == ids


def test_seed_overwrites_by_id_and_accepts_system_dates(tx: SqliteTransaction) -> None:
    given = "003000000000001AAA"
    tx.seed("Contact", [{"Id": given, "LastName": "A", "Email": "a@x.com"}])
    tx.seed("Contact", [{"Id": given, "LastName": "B", "CreatedDate": "2020-01-01T00:00:00.000Z"}])
    (record,) = rows(tx, "SELECT LastName, Email, CreatedDate FROM Contact")
    assert (record["LastName"], record["Email"], record["CreatedDate"]) == ("B", None, "2020-01-01T00:00:00.000Z")


def test_seed_errors(tx: SqliteTransaction) -> None:
    for bad in ["001000000000001AAA", "003short", "003000000000001AA!", 5]:
        with pytest.raises(DmlError, match="row 0: field Id"):
            tx.seed("Contact", [{"Id": bad}])
    tx.seed("Account", [{"Id": "001000000000001AAA"}])
    with pytest.raises(DmlError, match="row 0: field IsDeleted: is not writeable"):
        tx.seed("Contact", [{"IsDeleted": True}])
    with pytest.raises(DmlError, match="row 1: field Id: duplicate of row 0"):
        tx.seed("Contact", [{"Id": "003000000000001AAA"}, {"Id": "003000000000001AAA"}])
    assert rows(tx, "SELECT Id FROM Contact") == []


# --- transactions ------------------------------------------------------------------------


def test_uncommitted_writes_are_invisible_to_other_transactions(store: SqliteRecords) -> None:
    with store.begin() as writer, store.begin() as reader:
        insert(writer, "Contact", {"LastName": "A"})
        assert len(rows(writer, "SELECT Id FROM Contact")) == 1
        assert rows(reader, "SELECT Id FROM Contact") == []
        writer.commit()
        reader.rollback()
    with store.begin() as later:
        assert len(rows(later, "SELECT Id FROM Contact")) == 1


def test_a_reader_keeps_its_snapshot_until_it_writes(store: SqliteRecords) -> None:
    with store.begin() as reader:
        assert rows(reader, "SELECT Id FROM Contact") == []
        with store.begin() as writer:
            insert(writer, "Contact", {"LastName": "A"})
            writer.commit()
        assert rows(reader, "SELECT Id FROM Contact") == []  # still the old snapshot
        insert(reader, "Contact", {"LastName": "B"})  # writing moves it to the latest state
        assert len(rows(reader, "SELECT Id FROM Contact")) == 2


def test_rollback_discards_everything(store: SqliteRecords) -> None:
    with store.begin() as tx:
        insert(tx, "Contact", {"LastName": "A"})
        tx.seed("Contact", [{"LastName": "B"}])
        tx.rollback()
    with store.begin() as tx:
        assert rows(tx, "SELECT Id FROM Contact") == []


def test_close_without_commit_rolls_back(store: SqliteRecords) -> None:
    tx = store.begin()
    insert(tx, "Contact", {"LastName": "A"})
    tx.close()
    tx.close()  # idempotent
    with store.begin() as other:
        assert rows(other, "SELECT Id FROM Contact") == []


def test_commit_persists_across_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    with SqliteRecords(path) as store, store.begin() as tx:
        (record_id,) = insert(tx, "Contact", {"LastName": "A", "Active": True})
        tx.commit()
    with SqliteRecords(path) as store, store.begin() as tx:
        assert rows(tx, "SELECT LastName, Active FROM Contact") == [{"Id": record_id, "LastName": "A", "Active": True}]


def test_the_file_holds_one_records_table_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    SqliteRecords(path).close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert tables == ["records"]
    finally:
        conn.close()


def test_a_closed_transaction_refuses_use(store: SqliteRecords) -> None:
    tx = store.begin()
    tx.commit()
    with pytest.raises(RuntimeError, match="transaction is closed"):
        tx.query("SELECT Id FROM Contact", {}, 1)
    with pytest.raises(RuntimeError, match="transaction is closed"):
        tx.commit()
    tx.close()


def test_temporary_store_is_removed_on_close() -> None:
    store = SqliteRecords(None)
    path = store.path
    with store.begin() as tx:
        insert(tx, "Contact", {"LastName": "A"})
        tx.commit()
    assert path.exists()
    store.close()
    store.close()
    assert not path.exists() and not Path(f"{path}-wal").exists()
    with pytest.raises(RuntimeError, match="records store is closed"):
        store.begin()


def test_a_second_writer_waits_for_the_first(tmp_path: Path) -> None:
    with SqliteRecords(tmp_path / "r.sqlite3", busy_timeout=0.1) as store:
        with store.begin() as first, store.begin() as second:
            insert(first, "Contact", {"LastName": "A"})
            with pytest.raises(CircuitError, match="records store busy"):
                insert(second, "Contact", {"LastName": "B"})
            first.commit()
            insert(second, "Contact", {"LastName": "B"})
            second.commit()
        with store.begin() as tx:
            assert tx.query("SELECT COUNT() FROM Contact", {}, 0).total_size == 2


def test_concurrent_transactions_on_two_threads(store: SqliteRecords) -> None:
    per_thread = 20
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(tag: str) -> None:
        try:
            start.wait()
            for n in range(per_thread):
                with store.begin() as tx:
                    tx.seed("Contact", [{"LastName": f"{tag}{n}", "Tag": tag}])
                    mine = tx.query("SELECT Id FROM Contact WHERE Tag = :t", {"t": tag}, 1000).records
                    assert len(mine) == n + 1  # its own writes, never the other thread's uncommitted ones
                    tx.dml(DmlOp.UPDATE, "Contact", [{"Id": mine[-1]["Id"], "Done": True}])
                    if n % 2:
                        tx.commit()
                    else:
                        insert(tx, "Contact", {"LastName": "discarded"})
                        tx.rollback()
                        with store.begin() as again:
                            again.seed("Contact", [{"LastName": f"{tag}{n}", "Tag": tag, "Done": True}])
                            again.commit()
        except BaseException as e:  # reported on the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(tag,)) for tag in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.begin() as tx:
        assert tx.query("SELECT COUNT() FROM Contact WHERE Done = TRUE", {}, 0).total_size == 2 * per_thread
        assert tx.query("SELECT COUNT() FROM Contact", {}, 0).total_size == 2 * per_thread
