"""DML on CircuitDB: type checks and coercion per field type, required fields, references,
uniqueness, upsert, the recycle bin, seed and fetch. Errors name the row and the field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from circuit_host.circuitdb import CircuitDB, CircuitTransaction, FieldDef, FieldType, SchemaChanges
from circuit_host.circuitdb.schema import record_id_prefix
from circuit_host.connectors.records import DmlOp, DmlResult, RecordsConnector, RecordsTransaction
from circuit_host.errors import DmlError

from .conftest import database_url, dml_error, insert, new_tenant, rows

ISO_MS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def typed_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CircuitDB]:
    """Contact with one custom field of every type."""
    db = CircuitDB(database_url(str(request.param), tmp_path_factory.mktemp("typed")), new_tenant())
    fields = [
        FieldDef("Score__c", FieldType.NUMBER, precision=5, scale=0),
        FieldDef("Ratio__c", FieldType.NUMBER, precision=6, scale=2),
        FieldDef("Float__c", FieldType.NUMBER),
        FieldDef("Flag__c", FieldType.BOOLEAN),
        FieldDef("Due__c", FieldType.DATE),
        FieldDef("Seen__c", FieldType.DATETIME),
        FieldDef("Grade__c", FieldType.PICKLIST, values=("A", "B")),
        FieldDef("Tags__c", FieldType.PICKLIST, values=("x", "y", "z"), multi=True),
        FieldDef("Code__c", FieldType.TEXT, length=5, external_id=True),
        FieldDef("Level__c", FieldType.TEXT, default="basic"),
        FieldDef("Meta__c", FieldType.JSON),
        FieldDef("Buddy__c", FieldType.REFERENCE, reference_to=("Contact",)),
    ]
    db.apply_schema(SchemaChanges(fields=tuple(("Contact", f) for f in fields)))
    yield db
    db.drop_tenant()


@pytest.fixture
def ttx(typed_store: CircuitDB) -> Iterator[CircuitTransaction]:
    with typed_store.begin() as transaction:
        yield transaction


def test_is_a_records_connector(module_store: CircuitDB) -> None:
    store = module_store
    connector: RecordsConnector = store
    transaction: RecordsTransaction = connector.begin()
    transaction.close()


def test_ids_are_18_characters_with_the_object_prefix(tx: CircuitTransaction) -> None:
    for object_name, prefix, row in [
        ("Contact", "003", {"LastName": "x"}),
        ("Account", "001", {"Name": "x"}),
        ("Lead", "00Q", {"LastName": "x", "Company": "c"}),
        ("Opportunity", "006", {"Name": "x", "StageName": "Prospecting", "CloseDate": "2026-01-31"}),
        ("Task", "00T", {"Subject": "x"}),
        ("User", "005", {"Username": "u@x.com", "Email": "u@x.com", "LastName": "U"}),
    ]:
        (record_id,) = insert(tx, object_name, row)
        assert len(record_id) == 18 and record_id.startswith(prefix) and record_id.isalnum()


def test_custom_objects_get_distinct_derived_prefixes(store: CircuitDB) -> None:
    store.define_object("Invoice__c")
    store.define_object("Payment__c")
    prefixes = {store.schema.object(n).prefix for n in ("Invoice__c", "Payment__c")}  # type: ignore[union-attr]
    assert len(prefixes) == 2 and all(p.startswith("a") for p in prefixes)
    assert store.schema.object("invoice__c").prefix == record_id_prefix("Invoice__c")  # type: ignore[union-attr]


def test_insert_applies_defaults_and_returns_ids(ttx: CircuitTransaction) -> None:
    result = ttx.dml(DmlOp.INSERT, "Contact", [{"LastName": "A"}, {"LastName": "B", "Score__c": 3}])
    assert result.created == [True, True] and len(set(result.ids)) == 2
    got = rows(ttx, "SELECT LastName, Score__c, Level__c, Flag__c, CreatedDate FROM Contact")
    assert [(r["LastName"], r["Score__c"], r["Level__c"], r["Flag__c"]) for r in got] == [
        ("A", None, "basic", False),
        ("B", 3, "basic", False),
    ]
    (task,) = insert(ttx, "Task", {"Subject": "Call"})
    assert ttx.fetch("Task", [task])[0]["Status"] == "Not Started"


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("Score__c", 42, 42),
        ("Score__c", 41.5, 42),  # rounded half up to the scale
        ("Score__c", -99999, -99999),
        ("Ratio__c", 1.005, 1.01),
        ("Ratio__c", 7, 7.0),
        ("Float__c", 12.9, 12.9),
        ("Float__c", 3, 3.0),
        ("Flag__c", True, True),
        ("Flag__c", None, False),
        ("Due__c", "2026-02-28", "2026-02-28"),
        ("Seen__c", "2026-01-31T10:00:00Z", "2026-01-31T10:00:00.000Z"),
        ("Seen__c", "2026-01-31T12:00:00.123456+02:00", "2026-01-31T10:00:00.123Z"),
        ("Seen__c", "2026-01-31T10:00:00", "2026-01-31T10:00:00.000Z"),
        ("Grade__c", "a", "A"),
        ("Tags__c", "z; X;x", "z;x"),
        ("Tags__c", "", None),
        ("Email", "First.Last+tag@sub.example.com", "First.Last+tag@sub.example.com"),
        ("LeadSource", "Trade Show", "Trade Show"),  # a standard picklist is not restricted
        ("Meta__c", '{"b": [1, 2]}', '{"b":[1,2]}'),
        ("Title", "", ""),
        ("Code__c", "abcde", "abcde"),
    ],
)
def test_values_are_coerced_per_type(ttx: CircuitTransaction, field: str, value: Any, stored: Any) -> None:
    (record_id,) = insert(ttx, "Contact", {"LastName": "A", field: value})
    (record,) = ttx.fetch("Contact", [record_id])
    assert record[field] == stored and type(record[field]) is type(stored)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("Score__c", "5", "expected a number, got a string"),
        ("Score__c", True, "expected a number, got a boolean"),
        ("Score__c", 100000, "has more than 5 digits before the decimal point"),
        ("Ratio__c", 10000.0, "has more than 4 digits before the decimal point"),
        ("Float__c", float("nan"), "number must be finite"),
        ("Float__c", 2**64, "integer out of 64-bit range"),
        ("Flag__c", 1, "expected true or false, got a number"),
        ("Flag__c", "true", "expected true or false, got a string"),
        ("Due__c", "2026-02-30", "is not a valid date"),
        ("Due__c", "31/01/2026", "is not a date (YYYY-MM-DD)"),
        ("Due__c", 20260131, "expected a date string (YYYY-MM-DD), got a number"),
        ("Seen__c", "2026-01-31", "is not a datetime"),
        ("Seen__c", "2026-01-31T25:00:00Z", "is not a valid datetime"),
        ("Grade__c", "E", "'E' is not one of the picklist values"),
        ("Tags__c", "x;w", "'w' is not one of the picklist values"),
        ("Tags__c", "x;;y", "has an empty selection"),
        ("Email", "tomas.alvarez", "'tomas.alvarez' is not a valid email address"),
        ("Email", "a@b", "is not a valid email address"),
        ("Code__c", "abcdef", "is longer than 5 characters"),
        ("FirstName", "x" * 41, "is longer than 40 characters"),
        ("Meta__c", "{nope", "is not valid JSON"),
        ("Meta__c", {"a": 1}, "expected a JSON text string, got a value of type dict"),
        ("Title", ["a"], "expected a string, got a value of type list"),
        ("AccountId", "not-an-id", "'not-an-id' is not an 18-character record Id"),
        ("AccountId", "001000000000000AAA", "no Account with Id '001000000000000AAA'"),
        ("AccountId", "003000000000000AAA", "'003000000000000AAA' is not the Id of a Account"),
        ("Buddy__c", 7, "expected an Id string, got a number"),
    ],
)
def test_type_errors_name_row_and_field(ttx: CircuitTransaction, field: str, value: Any, message: str) -> None:
    error = dml_error(ttx, DmlOp.INSERT, "Contact", [{"LastName": "ok"}, {"LastName": "B", field: value}])
    assert error.startswith(f"row 1: field {field}: ") and message in error
    assert rows(ttx, "SELECT Id FROM Contact") == []


def test_a_bulk_statement_names_the_first_failing_row_and_field(ttx: CircuitTransaction) -> None:
    """Rows with the same field names are checked column by column; an error still names the first
    failing row and, in it, the first failing field, as checking row by row does."""
    batch = [{"LastName": f"n{i}", "Email": f"e{i}@x.com", "FirstName": "F", "Tags__c": "y; X"} for i in range(300)]
    batch[200]["Email"] = "not-an-email"
    batch[120]["FirstName"] = "x" * 41
    batch[120]["Email"] = "also bad"
    assert dml_error(ttx, DmlOp.INSERT, "Contact", batch).startswith("row 120: field Email: ")
    batch[120]["Email"] = "fine@x.com"
    assert dml_error(ttx, DmlOp.INSERT, "Contact", batch).startswith("row 120: field FirstName: ")
    twice = [{"LastName": "A", "lastname": "B"} for _ in range(3)]
    assert dml_error(ttx, DmlOp.INSERT, "Contact", twice) == "row 0: field lastname: duplicate of field LastName"
    assert rows(ttx, "SELECT Id FROM Contact") == []
    batch[120]["FirstName"] = "G"
    batch[200]["Email"] = None
    ttx.dml(DmlOp.INSERT, "Contact", batch)
    found = rows(ttx, "SELECT FirstName, Email, Tags__c FROM Contact WHERE Email = null OR FirstName = 'G'")
    assert [(r["FirstName"], r["Email"], r["Tags__c"]) for r in found] == [
        ("G", "fine@x.com", "y;x"),
        ("F", None, "y;x"),
    ]


def test_required_fields(ttx: CircuitTransaction) -> None:
    assert dml_error(ttx, DmlOp.INSERT, "Contact", [{"FirstName": "x"}]) == (
        "row 0: field LastName: required field missing"
    )
    assert dml_error(ttx, DmlOp.INSERT, "Contact", [{"lastname": None}]) == (
        "row 0: field lastname: required field cannot be empty"
    )
    (record_id,) = insert(ttx, "Contact", {"LastName": "A"})
    assert dml_error(ttx, DmlOp.UPDATE, "Contact", [{"Id": record_id, "LastName": ""}]) == (
        "row 0: field LastName: required field cannot be empty"
    )
    ttx.dml(DmlOp.UPDATE, "Contact", [{"Id": record_id, "FirstName": "F"}])  # LastName untouched
    assert dml_error(ttx, DmlOp.INSERT, "Opportunity", [{"Name": "Deal", "StageName": "Prospecting"}]) == (
        "row 0: field CloseDate: required field missing"
    )


def test_references(ttx: CircuitTransaction) -> None:
    (account,) = insert(ttx, "Account", {"Name": "Acme"})
    (contact,) = insert(ttx, "Contact", {"LastName": "A", "AccountId": account})
    (lead,) = insert(ttx, "Lead", {"LastName": "L", "Company": "C"})
    insert(ttx, "Contact", {"LastName": "B", "Buddy__c": contact})
    insert(ttx, "Task", {"Subject": "a", "WhoId": contact}, {"Subject": "b", "WhoId": lead, "WhatId": account})
    assert dml_error(ttx, DmlOp.INSERT, "Task", [{"WhoId": account}]) == (
        f"row 0: field WhoId: '{account}' is not the Id of a Contact or Lead"
    )
    ttx.dml(DmlOp.DELETE, "Account", [{"Id": account}])
    assert dml_error(ttx, DmlOp.INSERT, "Contact", [{"LastName": "C", "AccountId": account}]) == (
        f"row 0: field AccountId: no Account with Id '{account}'"
    )


def test_references_stay_inside_the_tenant(open_db: Any) -> None:
    first, second = open_db(), open_db()
    with first.begin() as tx:
        (account,) = insert(tx, "Account", {"Name": "Theirs"})
        tx.commit()
    with second.begin() as tx:
        message = dml_error(tx, DmlOp.INSERT, "Contact", [{"LastName": "A", "AccountId": account}])
        assert message == f"row 0: field AccountId: no Account with Id '{account}'"


def test_unique_and_external_id_fields(ttx: CircuitTransaction) -> None:
    insert(ttx, "Contact", {"LastName": "A", "Code__c": "K1"})
    assert dml_error(ttx, DmlOp.INSERT, "Contact", [{"LastName": "B", "Code__c": "k1"}]) == (
        "row 0: field Code__c: duplicate value 'k1', already used by " + rows(ttx, "SELECT Id FROM Contact")[0]["Id"]
    )
    message = dml_error(
        ttx, DmlOp.INSERT, "Contact", [{"LastName": "B", "Code__c": "K2"}, {"LastName": "C", "Code__c": "k2"}]
    )
    assert message == "row 1: field Code__c: duplicate value 'k2', also in row 0"
    (b,) = insert(ttx, "Contact", {"LastName": "B", "Code__c": "K2"})
    assert "duplicate value 'K1'" in dml_error(ttx, DmlOp.UPDATE, "Contact", [{"Id": b, "Code__c": "K1"}])
    ttx.dml(DmlOp.UPDATE, "Contact", [{"Id": b, "Code__c": "K2", "FirstName": "same key is fine"}])
    ttx.dml(DmlOp.DELETE, "Contact", [{"Id": b}])
    (c,) = insert(ttx, "Contact", {"LastName": "C", "Code__c": "K2"})  # the deleted record does not count
    assert dml_error(ttx, DmlOp.UNDELETE, "Contact", [{"Id": b}]) == (
        f"row 0: field Code__c: duplicate value 'K2', already used by {c}"
    )


def test_field_names_are_case_insensitive(tx: CircuitTransaction) -> None:
    (record_id,) = insert(tx, "Contact", {"lastname": "a"})
    tx.dml(DmlOp.UPDATE, "contact", [{"ID": record_id, "LASTNAME": "b"}])
    assert rows(tx, "SELECT LastName FROM CONTACT") == [{"Id": record_id, "LastName": "b"}]


def test_update_merges_fields_and_touches_last_modified(tx: CircuitTransaction) -> None:
    (record_id,) = insert(tx, "Contact", {"LastName": "A", "Email": "a@x.com"})
    assert tx.dml(DmlOp.UPDATE, "Contact", [{"Id": record_id, "Email": None, "Title": "CEO"}]) == DmlResult(
        [record_id], [False]
    )
    (record,) = rows(tx, "SELECT LastName, Email, Title, CreatedDate, LastModifiedDate FROM Contact")
    assert (record["LastName"], record["Email"], record["Title"]) == ("A", None, "CEO")
    assert record["LastModifiedDate"] >= record["CreatedDate"]


def test_one_update_statement_with_rows_changing_different_fields(tx: CircuitTransaction) -> None:
    # rows are written in groups of the same columns; no row may get another row's values
    ids = insert(tx, "Contact", *({"LastName": f"L{i}", "Email": f"{i}@x.com", "Title": "T"} for i in range(5)))
    changes = [
        {"Id": ids[0], "Title": "CEO"},
        {"Id": ids[1], "Email": None},
        {"Id": ids[2], "Title": "CTO"},
        {"Id": ids[3], "Title": None, "Email": "new@x.com"},
    ]
    assert tx.dml(DmlOp.UPDATE, "Contact", changes) == DmlResult(ids[:4], [False] * 4)
    got = {
        r["Id"]: (r["LastName"], r["Email"], r["Title"]) for r in rows(tx, "SELECT LastName, Email, Title FROM Contact")
    }
    assert got == {
        ids[0]: ("L0", "0@x.com", "CEO"),
        ids[1]: ("L1", None, "T"),
        ids[2]: ("L2", "2@x.com", "CTO"),
        ids[3]: ("L3", "new@x.com", None),
        ids[4]: ("L4", "4@x.com", "T"),
    }


def test_empty_statement_does_nothing(tx: CircuitTransaction) -> None:
    assert tx.dml(DmlOp.INSERT, "Contact", []) == DmlResult([], [])
    assert tx.dml(0, "Contact", [{"LastName": "A"}]).created == [True]  # type: ignore[arg-type]


# --- upsert, delete, undelete ------------------------------------------------------------


def test_upsert_by_id(tx: CircuitTransaction) -> None:
    (existing,) = insert(tx, "Contact", {"LastName": "A"})
    result = tx.dml(DmlOp.UPSERT, "Contact", [{"Id": existing, "LastName": "A2"}, {"LastName": "B"}])
    assert result.ids[0] == existing and result.created == [False, True]
    assert [r["LastName"] for r in rows(tx, "SELECT LastName FROM Contact")] == ["A2", "B"]


def test_upsert_by_external_id(ttx: CircuitTransaction) -> None:
    (existing,) = insert(ttx, "Contact", {"Code__c": "a1", "LastName": "A"})
    result = ttx.dml(
        DmlOp.UPSERT,
        "Contact",
        [{"Code__c": "A1", "FirstName": "F"}, {"Code__c": "b1", "LastName": "B"}],
        external_id="code__c",
    )
    assert result.ids[0] == existing and result.created == [False, True]
    assert [(r["LastName"], r["FirstName"]) for r in rows(ttx, "SELECT LastName, FirstName FROM Contact")] == [
        ("A", "F"),
        ("B", None),
    ]
    # a deleted record is not matched: the upsert inserts a new one
    ttx.dml(DmlOp.DELETE, "Contact", [{"Id": existing}])
    again = ttx.dml(DmlOp.UPSERT, "Contact", [{"Code__c": "a1", "LastName": "A3"}], external_id="Code__c")
    assert again.created == [True] and again.ids[0] != existing


def test_upsert_errors(ttx: CircuitTransaction) -> None:
    (a,) = insert(ttx, "Contact", {"LastName": "A", "Code__c": "k1"})
    (b,) = insert(ttx, "Contact", {"LastName": "B", "Code__c": "k2"})
    up = DmlOp.UPSERT
    assert dml_error(ttx, up, "Contact", [{"LastName": "x"}], external_id="Code__c") == (
        "row 0: field Code__c: upsert key must have a value"
    )
    assert dml_error(ttx, up, "Contact", [{"Code__c": "K9"}, {"Code__c": "k9"}], external_id="Code__c") == (
        "row 1: field Code__c: duplicate upsert key, also in row 0"
    )
    assert "invalid field name" in dml_error(ttx, up, "Contact", [{}], external_id="E'; --")
    assert dml_error(ttx, up, "Contact", [{}], external_id="Email") == (
        "external_id: Email is not an external id field of Contact"
    )
    assert dml_error(ttx, up, "Contact", [{}], external_id="Nope__c") == "external_id: no field Nope__c on Contact"
    assert dml_error(ttx, up, "Contact", [{"Id": b, "Code__c": "k1"}], external_id="Code__c") == (
        "row 0: field Id: does not match the Contact found by Code__c"
    )
    assert "row 0: field LastName: required field missing" in dml_error(
        ttx, up, "Contact", [{"Code__c": "new"}], external_id="Code__c"
    )
    assert "no Contact with Id" in dml_error(ttx, up, "Contact", [{"Id": "003000000000000AAA"}])
    assert a


def test_delete_and_undelete(tx: CircuitTransaction) -> None:
    a, b = insert(tx, "Contact", {"LastName": "A"}, {"LastName": "B"})
    assert tx.dml(DmlOp.DELETE, "Contact", [{"Id": a, "LastName": "ignored"}]) == DmlResult([a], [False])
    assert [r["Id"] for r in rows(tx, "SELECT Id FROM Contact")] == [b]
    assert tx.fetch("Contact", [a])[0]["IsDeleted"] is True
    assert tx.dml(DmlOp.UNDELETE, "Contact", [{"Id": a}]) == DmlResult([a], [False])
    assert [r["LastName"] for r in rows(tx, "SELECT LastName FROM Contact")] == ["A", "B"]


def test_delete_and_undelete_check_the_recycle_bin(tx: CircuitTransaction) -> None:
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
        (DmlOp.INSERT, [{"Name'; DROP TABLE circuitdb_schema; --": "x"}], "row 0: invalid field name"),
        (DmlOp.INSERT, [{"a.b": "x"}], "row 0: invalid field name 'a.b'"),
        (DmlOp.INSERT, [{1: "x"}], "row 0: invalid field name 1"),
        (DmlOp.INSERT, [{"_row": 1}], "row 0: field _row: no such field on Contact"),
        (DmlOp.INSERT, [{"Nope__c": 1}], "row 0: field Nope__c: no such field on Contact"),
        (DmlOp.INSERT, [{"LastName": "x", "LASTNAME": "y"}], "row 0: field LASTNAME: duplicate of field LastName"),
        (DmlOp.INSERT, [{"CreatedDate": "2020-01-01T00:00:00.000Z"}], "row 0: field CreatedDate: is not writeable"),
        (DmlOp.INSERT, [{"isdeleted": True}], "row 0: field isdeleted: is not writeable"),
        (DmlOp.UPDATE, [{"LastName": "x"}], "row 0: field Id: required for update"),
        (DmlOp.UPDATE, [{"Id": 3}], "row 0: field Id: must be a string"),
        (DmlOp.UPDATE, [{"Id": "003000000000000AAA"}], "row 0: field Id: no Contact with Id '003000000000000AAA'"),
        (DmlOp.DELETE, [{}], "row 0: field Id: required for delete"),
        (DmlOp.UNDELETE, [{}], "row 0: field Id: required for undelete"),
        (DmlOp.DELETE, [{"Id": "x" * 1000}], "no Contact with Id 'xxxxxxxx"),
        (DmlOp.DELETE, [{"Id": "'; DROP TABLE circuitdb_schema; --"}], "no Contact with Id"),
    ],
)
def test_dml_validation_errors(tx: CircuitTransaction, op: DmlOp, data: list[Any], message: str) -> None:
    assert message in dml_error(tx, op, "Contact", data)


def test_object_names(tx: CircuitTransaction) -> None:
    for bad in ["", "Contact; DROP TABLE circuitdb_schema", "Account.Name", "a b", "9Lives"]:
        assert "invalid object name" in dml_error(tx, DmlOp.INSERT, bad, [{}])
    assert dml_error(tx, DmlOp.INSERT, "Nothing__c", [{}]) == "unknown object 'Nothing__c'"
    with pytest.raises(DmlError, match="invalid object name"):
        tx.seed("records'--", [{}])


def test_ids_must_belong_to_the_object(tx: CircuitTransaction) -> None:
    (account,) = insert(tx, "Account", {"Name": "A"})
    assert dml_error(tx, DmlOp.UPDATE, "Contact", [{"Id": account, "LastName": "x"}]) == (
        f"row 0: field Id: no Contact with Id '{account}'"
    )


def test_a_statement_may_not_target_a_record_twice(tx: CircuitTransaction) -> None:
    (record_id,) = insert(tx, "Contact", {"LastName": "A"})
    twice = [{"Id": record_id}, {"Id": record_id}]
    for op in (DmlOp.UPDATE, DmlOp.UPSERT, DmlOp.DELETE):
        assert dml_error(tx, op, "Contact", twice) == "row 1: field Id: duplicate of row 0"


def test_a_failed_statement_writes_nothing(tx: CircuitTransaction) -> None:
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
    insert(tx, "Contact", {"LastName": "after"})
    assert len(rows(tx, "SELECT Id FROM Contact")) == 2


# --- seed and fetch ----------------------------------------------------------------------


def test_seed_keeps_given_ids_and_assigns_missing_ones(tx: CircuitTransaction) -> None:
    given = "003Qy00000VLp01IAB"
    ids = tx.seed("Contact", [{"Id": given, "LastName": "A"}, {"LastName": "B"}])
    assert ids[0] == given and ids[1].startswith("003") and len(ids[1]) == 18
    assert [r["Id"] for r in rows(tx, "SELECT Id FROM Contact")] == ids


def test_seed_overwrites_by_id_and_accepts_system_dates(tx: CircuitTransaction) -> None:
    given = "003000000000001AAA"
    tx.seed("Contact", [{"Id": given, "LastName": "A", "Email": "a@x.com"}])
    tx.seed("Contact", [{"Id": given, "LastName": "B", "CreatedDate": "2020-01-01T00:00:00.000Z"}])
    (record,) = rows(tx, "SELECT LastName, Email, CreatedDate FROM Contact")
    assert (record["LastName"], record["Email"], record["CreatedDate"]) == ("B", None, "2020-01-01T00:00:00.000Z")


def test_seed_is_validated_by_the_schema(tx: CircuitTransaction) -> None:
    for bad in ["001000000000001AAA", "003short", "003000000000001AA!", 5]:
        with pytest.raises(DmlError, match="row 0: field Id"):
            tx.seed("Contact", [{"Id": bad, "LastName": "x"}])
    with pytest.raises(DmlError, match="row 0: field IsDeleted: is not writeable"):
        tx.seed("Contact", [{"IsDeleted": True}])
    with pytest.raises(DmlError, match="row 1: field Id: duplicate of row 0"):
        tx.seed("Contact", [{"Id": "003000000000001AAA", "LastName": "x"}, {"Id": "003000000000001AAA"}])
    with pytest.raises(DmlError, match="row 0: field Email: 'nope' is not a valid email address"):
        tx.seed("Contact", [{"LastName": "x", "Email": "nope"}])
    with pytest.raises(DmlError, match="row 0: field LastName: required field missing"):
        tx.seed("Contact", [{"FirstName": "x"}])
    assert rows(tx, "SELECT Id FROM Contact") == []


def test_fetch_returns_every_field_in_the_order_asked(tx: CircuitTransaction) -> None:
    a, b = insert(tx, "Contact", {"LastName": "A", "Email": "a@x.com"}, {"LastName": "B"})
    tx.dml(DmlOp.DELETE, "Contact", [{"Id": a}])
    got = tx.fetch("Contact", [b, "003000000000000AAA", a, "x' OR 1=1"])
    assert [r["Id"] for r in got] == [b, a]
    assert got[1]["IsDeleted"] is True and got[1]["Email"] == "a@x.com" and got[0]["IsDeleted"] is False
    assert {"Id", "LastName", "FirstName", "AccountId", "CreatedDate", "LastModifiedDate"} <= set(got[0])
    assert tx.fetch("Contact", []) == []
