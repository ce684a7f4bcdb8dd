"""SOQL on CircuitDB: every operator and literal, parent fields, schema checks, hostile input.

The records live in an uncommitted transaction of a store shared by the module (one per
backend), so each test sees exactly the fixture data and leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from circuit_host.circuitdb import CircuitDB, CircuitTransaction, FieldDef, FieldType
from circuit_host.connectors.records import DmlOp
from circuit_host.errors import QueryError
from circuit_host.soql.parser import MAX_CONDITIONS, MAX_DEPTH

from .conftest import database_url, insert, new_tenant, query_error, rows

TODAY = datetime.now(UTC).date()
NOW = datetime.now(UTC)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CircuitDB]:
    url = database_url(str(request.param), tmp_path_factory.mktemp("query"))
    db = CircuitDB(url, new_tenant())
    db.add_field("Account", FieldDef("Active__c", FieldType.BOOLEAN))
    db.add_field("Account", FieldDef("Tags__c", FieldType.PICKLIST, values=("Red", "Green", "Blue"), multi=True))
    db.add_field("Account", FieldDef("Founded__c", FieldType.DATE))
    db.add_field("Account", FieldDef("Last_Seen__c", FieldType.DATETIME))
    db.add_field("Account", FieldDef("Meta__c", FieldType.JSON))
    yield db
    db.drop_tenant()


@pytest.fixture
def accounts(shared_store: CircuitDB) -> Iterator[CircuitTransaction]:
    with shared_store.begin() as tx:
        insert(
            tx,
            "Account",
            {
                "Name": "Acme", "NumberOfEmployees": 500, "AnnualRevenue": 1.5e6, "Active__c": True,
                "BillingCity": "Paris", "Tags__c": "Red;Blue", "Founded__c": TODAY.isoformat(),
                "Last_Seen__c": (NOW - timedelta(hours=1)).isoformat(), "Meta__c": '{"a": 1}',
            },
            {
                "Name": "bolt", "NumberOfEmployees": 20, "AnnualRevenue": 2.5e5, "Active__c": False,
                "Tags__c": "green", "Founded__c": (TODAY - timedelta(days=10)).isoformat(),
                "Last_Seen__c": (NOW - timedelta(days=40)).isoformat(),
            },
            {
                "Name": "Cobalt", "NumberOfEmployees": 75, "Active__c": True,
                "Founded__c": (TODAY + timedelta(days=1)).isoformat(),
            },
            {"Name": "delta_50%", "NumberOfEmployees": 5},
        )  # fmt: skip
        yield tx


def names(tx: CircuitTransaction, where: str, **binds: Any) -> list[str]:
    return [r["Name"] for r in rows(tx, f"SELECT Name FROM Account WHERE {where} ORDER BY Name", **binds)]


# --- records -----------------------------------------------------------------------------


def test_records_have_exactly_the_selected_fields_plus_id_in_select_casing(accounts: CircuitTransaction) -> None:
    result = accounts.query("SELECT name, NUMBEROFEMPLOYEES, Tags__c FROM account WHERE Name = 'Acme'", {}, 10)
    assert result.total_size == 1
    (record,) = result.records
    assert list(record) == ["Id", "name", "NUMBEROFEMPLOYEES", "Tags__c"]
    assert record["name"] == "Acme" and record["NUMBEROFEMPLOYEES"] == 500 and record["Tags__c"] == "Red;Blue"
    assert record["Id"].startswith("001") and len(record["Id"]) == 18


def test_values_come_back_as_abi_scalars(accounts: CircuitTransaction) -> None:
    soql = (
        "SELECT NumberOfEmployees, AnnualRevenue, Active__c, BillingCity, Founded__c, Last_Seen__c, Meta__c, "
        "CreatedDate, IsDeleted FROM Account WHERE Name = 'Acme'"
    )
    (r,) = rows(accounts, soql)
    assert type(r["NumberOfEmployees"]) is int and type(r["AnnualRevenue"]) is float
    assert r["Active__c"] is True and r["IsDeleted"] is False and r["BillingCity"] == "Paris"
    assert r["Founded__c"] == TODAY.isoformat()
    assert r["Last_Seen__c"].endswith("Z") and len(r["Last_Seen__c"]) == 24
    assert r["Meta__c"] == '{"a":1}'
    (other,) = rows(accounts, "SELECT Active__c, BillingCity, Meta__c FROM Account WHERE Name = 'delta_50%'")
    assert other == {"Id": other["Id"], "Active__c": False, "BillingCity": None, "Meta__c": None}


# --- operators ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("NumberOfEmployees = 20", ["bolt"]),
        ("NumberOfEmployees != 20", ["Acme", "Cobalt", "delta_50%"]),
        ("NumberOfEmployees <> 20", ["Acme", "Cobalt", "delta_50%"]),
        ("NumberOfEmployees < 75", ["bolt", "delta_50%"]),
        ("NumberOfEmployees <= 75", ["bolt", "Cobalt", "delta_50%"]),
        ("NumberOfEmployees > 75", ["Acme"]),
        ("NumberOfEmployees >= 75", ["Acme", "Cobalt"]),
        ("NumberOfEmployees = 20.0", ["bolt"]),
        ("NumberOfEmployees < 20.5", ["bolt", "delta_50%"]),
        ("AnnualRevenue > 1000000", ["Acme"]),
        ("AnnualRevenue = 250000", ["bolt"]),
        ("Active__c = TRUE", ["Acme", "Cobalt"]),
        ("Active__c = false", ["bolt", "delta_50%"]),
        ("Active__c != TRUE", ["bolt", "delta_50%"]),
        ("Active__c = NULL", []),
        ("BillingCity = NULL", ["bolt", "Cobalt", "delta_50%"]),
        ("BillingCity != NULL", ["Acme"]),
        ("Name = 'ACME'", ["Acme"]),
        ("Name > 'b'", ["bolt", "Cobalt", "delta_50%"]),
        ("Name IN ('acme', 'BOLT', 'zeta')", ["Acme", "bolt"]),
        ("NumberOfEmployees IN (5, 75)", ["Cobalt", "delta_50%"]),
        ("NumberOfEmployees IN (5.0, 75.5)", ["delta_50%"]),
        ("Name NOT IN ('acme', 'bolt')", ["Cobalt", "delta_50%"]),
        ("BillingCity IN ('Paris', NULL)", ["Acme", "bolt", "Cobalt", "delta_50%"]),
        ("BillingCity NOT IN ('Paris')", ["bolt", "Cobalt", "delta_50%"]),
        ("BillingCity NOT IN ('Paris', NULL)", []),
        ("Active__c IN (TRUE)", ["Acme", "Cobalt"]),
        ("Name LIKE 'a%'", ["Acme"]),
        ("Name LIKE '%O%'", ["bolt", "Cobalt"]),
        ("Name LIKE '_olt'", ["bolt"]),
        ("Name LIKE 'delta\\_50\\%'", ["delta_50%"]),
        ("Name LIKE 'delta\\_5%'", ["delta_50%"]),
        ("Name LIKE 'delta_5_\\%'", ["delta_50%"]),
        ("Name LIKE 'Acm'", []),
        ("BillingCity LIKE '%'", ["Acme"]),
        ("Tags__c INCLUDES ('red')", ["Acme"]),
        ("Tags__c INCLUDES ('Green', 'Blue')", ["Acme", "bolt"]),
        ("Tags__c INCLUDES ('red;blue')", ["Acme"]),
        ("Tags__c INCLUDES ('red;green')", []),
        ("Tags__c INCLUDES ('Re')", []),
        ("Tags__c EXCLUDES ('red')", ["bolt", "Cobalt", "delta_50%"]),
        ("Tags__c EXCLUDES ('red', 'green')", ["Cobalt", "delta_50%"]),
        ("NOT Tags__c INCLUDES ('red')", ["bolt", "Cobalt", "delta_50%"]),
        ("Tags__c = 'red;blue'", ["Acme"]),
    ],
)
def test_operators(accounts: CircuitTransaction, where: str, expected: list[str]) -> None:
    assert names(accounts, where) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Founded__c = TODAY", ["Acme"]),
        ("Founded__c != TODAY", ["bolt", "Cobalt", "delta_50%"]),
        ("Founded__c < TODAY", ["bolt"]),
        ("Founded__c <= TODAY", ["Acme", "bolt"]),
        ("Founded__c > TODAY", ["Cobalt"]),
        ("Founded__c >= TODAY", ["Acme", "Cobalt"]),
        ("Founded__c = TOMORROW", ["Cobalt"]),
        ("Founded__c = YESTERDAY", []),
        ("Founded__c = LAST_N_DAYS:10", ["Acme", "bolt"]),
        ("Founded__c = LAST_N_DAYS:9", ["Acme"]),
        ("Founded__c = NEXT_N_DAYS:1", ["Cobalt"]),
        ("Founded__c = THIS_YEAR OR Founded__c = LAST_YEAR OR Founded__c = NEXT_YEAR", ["Acme", "bolt", "Cobalt"]),
        ("Last_Seen__c = TODAY OR Last_Seen__c = YESTERDAY", ["Acme"]),
        ("Last_Seen__c = LAST_N_DAYS:30", ["Acme"]),
        ("Last_Seen__c = LAST_N_DAYS:45", ["Acme", "bolt"]),
        ("Last_Seen__c < LAST_N_DAYS:30", ["bolt"]),
        ("CreatedDate = TODAY", ["Acme", "bolt", "Cobalt", "delta_50%"]),
        ("CreatedDate > 2000-01-01T00:00:00Z", ["Acme", "bolt", "Cobalt", "delta_50%"]),
        ("CreatedDate < 2000-01-01T00:00:00+02:00", []),
        (f"Founded__c = {TODAY.isoformat()}", ["Acme"]),
        (f"Founded__c IN ({TODAY.isoformat()}, {(TODAY + timedelta(days=1)).isoformat()})", ["Acme", "Cobalt"]),
        (f"Founded__c > {TODAY.isoformat()}", ["Cobalt"]),
    ],
)
def test_dates(accounts: CircuitTransaction, where: str, expected: list[str]) -> None:
    assert names(accounts, where) == expected


def test_date_and_datetime_binds_are_iso_strings(accounts: CircuitTransaction) -> None:
    assert names(accounts, "Founded__c = :d", d=TODAY.isoformat()) == ["Acme"]
    assert names(accounts, "Founded__c IN :ds", ds=[TODAY.isoformat(), None]) == ["Acme", "delta_50%"]
    since = (NOW - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert names(accounts, "Last_Seen__c > :since", since=since) == ["Acme"]
    assert "is not a date" in query_error(accounts, "SELECT Id FROM Account WHERE Founded__c = :d", d="today")


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Name = 'Acme' OR NOT Active__c = TRUE AND NumberOfEmployees > 10", ["Acme", "bolt"]),
        ("(Name = 'Acme' OR NOT Active__c = TRUE) AND NumberOfEmployees > 10", ["Acme", "bolt"]),
        ("NOT (Name = 'Acme' OR Name = 'bolt')", ["Cobalt", "delta_50%"]),
        ("NOT NOT Name = 'Acme'", ["Acme"]),
        ("NOT BillingCity = 'Paris'", ["bolt", "Cobalt", "delta_50%"]),
        ("NOT BillingCity != 'Paris'", ["Acme"]),
        ("NOT AnnualRevenue > 0", ["Cobalt", "delta_50%"]),
        ("NOT Founded__c = TODAY", ["bolt", "Cobalt", "delta_50%"]),
    ],
)
def test_logic_and_nulls(accounts: CircuitTransaction, where: str, expected: list[str]) -> None:
    assert names(accounts, where) == expected


def test_id_comparisons_are_exact(accounts: CircuitTransaction) -> None:
    acme_id = rows(accounts, "SELECT Id FROM Account WHERE Name = 'Acme'")[0]["Id"]
    assert names(accounts, "Id = :id", id=acme_id) == ["Acme"]
    assert names(accounts, "Id = :id", id=acme_id.lower()) == []
    assert names(accounts, "Id IN :ids", ids=[acme_id, "001000000000000AAA"]) == ["Acme"]
    assert len(names(accounts, "Id != :id", id=acme_id)) == 3


def test_binds(accounts: CircuitTransaction) -> None:
    assert names(accounts, "Name = :n", n="bolt") == ["bolt"]
    assert names(accounts, "NumberOfEmployees >= :n AND Active__c = :a", n=50, a=True) == ["Acme", "Cobalt"]
    assert names(accounts, "Name IN :names", names=["Acme", "Cobalt"]) == ["Acme", "Cobalt"]
    assert names(accounts, "Name IN :names", names=[]) == []
    assert len(names(accounts, "Name NOT IN :names", names=[])) == 4
    assert names(accounts, "BillingCity = :c", c=None) == ["bolt", "Cobalt", "delta_50%"]
    assert names(accounts, "Name LIKE :p", p="%lt") == ["bolt", "Cobalt"]
    assert names(accounts, "Tags__c INCLUDES :t", t=["blue", "green"]) == ["Acme", "bolt"]
    assert names(accounts, "Tags__c INCLUDES :t", t="green") == ["bolt"]


def test_large_in_list_bind_is_one_parameter(accounts: CircuitTransaction) -> None:
    many = [f"name{n}" for n in range(100_000)] + ["Acme"]
    assert names(accounts, "Name IN :many", many=many) == ["Acme"]
    assert names(accounts, "NumberOfEmployees IN :n", n=[*range(1000, 50_000), 5]) == ["delta_50%"]


# --- parent fields -----------------------------------------------------------------------


def test_parent_fields_through_a_reference(accounts: CircuitTransaction) -> None:
    acme, bolt = (rows(accounts, f"SELECT Id FROM Account WHERE Name = '{n}'")[0]["Id"] for n in ("Acme", "bolt"))
    insert(
        accounts,
        "Contact",
        {"LastName": "Ann", "AccountId": acme},
        {"LastName": "Bob", "AccountId": bolt},
        {"LastName": "Cy"},
    )
    got = rows(
        accounts,
        "SELECT LastName, Account.Name, account.billingcity FROM Contact ORDER BY Account.Name DESC NULLS LAST",
    )
    assert [(r["LastName"], r["Account.Name"], r["account.billingcity"]) for r in got] == [
        ("Bob", "bolt", None),
        ("Ann", "Acme", "Paris"),
        ("Cy", None, None),
    ]
    assert [r["LastName"] for r in rows(accounts, "SELECT LastName FROM Contact WHERE Account.Name LIKE 'a%'")] == [
        "Ann"
    ]
    count = accounts.query("SELECT COUNT() FROM Contact WHERE Account.Active__c = TRUE", {}, 0)
    assert count.total_size == 1


def test_parent_of_a_parent(accounts: CircuitTransaction) -> None:
    acme = rows(accounts, "SELECT Id FROM Account WHERE Name = 'Acme'")[0]["Id"]
    (child,) = insert(accounts, "Account", {"Name": "Acme EU", "ParentId": acme})
    insert(accounts, "Contact", {"LastName": "Eve", "AccountId": child})
    (record,) = rows(accounts, "SELECT Account.Parent.Name, Account.Name FROM Contact")
    assert record["Account.Parent.Name"] == "Acme" and record["Account.Name"] == "Acme EU"


# --- ORDER BY, LIMIT, OFFSET, COUNT() and max_rows ---------------------------------------


def order(tx: CircuitTransaction, clause: str) -> list[str]:
    return [r["Name"] for r in rows(tx, f"SELECT Name FROM Account ORDER BY {clause}")]


def test_order_by(accounts: CircuitTransaction) -> None:
    assert order(accounts, "AnnualRevenue") == ["Cobalt", "delta_50%", "bolt", "Acme"]  # nulls first
    assert order(accounts, "AnnualRevenue DESC") == ["Cobalt", "delta_50%", "Acme", "bolt"]
    assert order(accounts, "AnnualRevenue DESC NULLS LAST") == ["Acme", "bolt", "Cobalt", "delta_50%"]
    assert order(accounts, "AnnualRevenue ASC NULLS LAST") == ["bolt", "Acme", "Cobalt", "delta_50%"]
    assert order(accounts, "Name") == ["Acme", "bolt", "Cobalt", "delta_50%"]  # case-insensitive
    assert order(accounts, "Active__c DESC, Name DESC") == ["Cobalt", "Acme", "delta_50%", "bolt"]
    assert order(accounts, "Founded__c DESC NULLS LAST") == ["Cobalt", "Acme", "bolt", "delta_50%"]


def test_without_order_by_records_come_in_insertion_order(accounts: CircuitTransaction) -> None:
    assert [r["Name"] for r in rows(accounts, "SELECT Name FROM Account")] == ["Acme", "bolt", "Cobalt", "delta_50%"]


def test_limit_and_offset(accounts: CircuitTransaction) -> None:
    def page(clause: str, **binds: Any) -> list[str]:
        return [r["Name"] for r in rows(accounts, f"SELECT Name FROM Account ORDER BY Name {clause}", **binds)]

    assert page("LIMIT 2") == ["Acme", "bolt"]
    assert page("LIMIT 2 OFFSET 1") == ["bolt", "Cobalt"]
    assert page("OFFSET 3") == ["delta_50%"]
    assert page("LIMIT 0") == []
    assert page("LIMIT :n OFFSET :o", n=1, o=2) == ["Cobalt"]
    assert page("OFFSET 10") == []


def test_count(accounts: CircuitTransaction) -> None:
    assert accounts.query("SELECT COUNT() FROM Account", {}, 0).total_size == 4
    result = accounts.query("SELECT COUNT() FROM Account WHERE Active__c = TRUE", {}, 0)
    assert (result.records, result.total_size) == ([], 2)
    assert accounts.query("SELECT COUNT() FROM Account LIMIT 3", {}, 0).total_size == 3
    assert accounts.query("SELECT COUNT() FROM Account OFFSET 3", {}, 0).total_size == 1


def test_max_rows_returns_at_most_one_extra_record(accounts: CircuitTransaction) -> None:
    result = accounts.query("SELECT Name FROM Account", {}, 2)
    assert len(result.records) == 3 and result.total_size == 3
    assert len(accounts.query("SELECT Name FROM Account", {}, 4).records) == 4
    assert len(accounts.query("SELECT Name FROM Account", {}, 0).records) == 1
    assert len(accounts.query("SELECT Name FROM Account LIMIT 1", {}, 2).records) == 1
    with pytest.raises(ValueError):
        accounts.query("SELECT Name FROM Account", {}, -1)


# --- the recycle bin ---------------------------------------------------------------------


def test_deleted_records_only_when_asked_for(accounts: CircuitTransaction) -> None:
    acme = rows(accounts, "SELECT Id FROM Account WHERE Name = 'Acme'")[0]["Id"]
    accounts.dml(DmlOp.DELETE, "Account", [{"Id": acme}])
    assert "Acme" not in names(accounts, "Name != NULL")
    assert names(accounts, "IsDeleted = TRUE") == ["Acme"]
    assert len(names(accounts, "IsDeleted = TRUE OR IsDeleted = FALSE")) == 4
    assert accounts.query("SELECT COUNT() FROM Account", {}, 0).total_size == 3


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("soql", "binds", "message"),
    [
        ("SELECT Id FROM Nothing__c", {}, "unknown object 'Nothing__c'"),
        ("SELECT Id, Missing__c FROM Account", {}, "line 1, column 12: no field 'Missing__c' on Account"),
        ("SELECT Id FROM Account WHERE Nope = 1", {}, "line 1, column 30: no field 'Nope' on Account"),
        ("SELECT Id FROM Account ORDER BY Nope", {}, "line 1, column 33: no field 'Nope' on Account"),
        ("SELECT Owner.Nope FROM Account", {}, "line 1, column 8: no field 'Nope' on User"),
        ("SELECT Foo.Name FROM Contact", {}, "line 1, column 8: unknown relationship 'Foo' on Contact"),
        ("SELECT LastName.Name FROM Contact", {}, "LastName on Contact is not a relationship"),
        ("SELECT Who.Name FROM Task", {}, "Who on Task is polymorphic and cannot be traversed; select WhoId"),
        (
            "SELECT Id FROM Account WHERE Active__c = 'yes'",
            {},
            "line 1, column 42: Active__c is a boolean field; it cannot be compared with string 'yes'",
        ),
        ("SELECT Id FROM Account WHERE Active__c = :b", {"b": 1}, "cannot be compared with number 1"),
        ("SELECT Id FROM Account WHERE Active__c > TRUE", {}, "can only be compared with = or !="),
        ("SELECT Id FROM Account WHERE Name = 5", {}, "Name is a text field; it cannot be compared with number 5"),
        ("SELECT Id FROM Account WHERE NumberOfEmployees = '5'", {}, "number field; it cannot be compared with string"),
        ("SELECT Id FROM Account WHERE NumberOfEmployees = TRUE", {}, "cannot be compared with TRUE"),
        ("SELECT Id FROM Account WHERE Founded__c = '2026-01-01'", {}, "date field; it cannot be compared with string"),
        ("SELECT Id FROM Account WHERE Founded__c = 2026-01-01T00:00:00Z", {}, "cannot be compared with datetime"),
        (
            "SELECT Id FROM Account WHERE CreatedDate = 2026-01-01",
            {},
            "datetime field; it cannot be compared with date",
        ),
        ("SELECT Id FROM Account WHERE Name = TODAY", {}, "TODAY is a date literal; Name is a text field"),
        ("SELECT Id FROM Account WHERE NumberOfEmployees LIKE '5%'", {}, "LIKE needs a text field"),
        ("SELECT Id FROM Account WHERE Name INCLUDES ('a')", {}, "INCLUDES needs a multi-select picklist"),
        ("SELECT Id FROM Account WHERE Meta__c = 'x'", {}, "cannot filter on Meta__c: a json field"),
        ("SELECT Id FROM Account ORDER BY Tags__c", {}, "cannot order by Tags__c: a multi-select picklist field"),
        ("SELECT Id FROM Account WHERE Name = :foo", {}, "line 1, column 37: unknown bind variable :foo"),
        ("SELECT Id FROM Account WHERE Name = :x", {"x": [1]}, "is a list; expected a single value"),
        ("SELECT Id FROM Account WHERE Name IN :x", {"x": "a"}, "must be a list for IN"),
        ("SELECT Id FROM Account WHERE Name IN :x", {"x": ["a", 1]}, "cannot be compared with number 1"),
        ("SELECT Id FROM Account WHERE Name < :x", {"x": None}, "NULL can only be compared with = or !=, not <"),
        ("SELECT Id FROM Account WHERE Name LIKE :x", {"x": 5}, "LIKE needs a string pattern"),
        ("SELECT Id FROM Account WHERE Name = :x", {"x": b"bytes"}, "unsupported value of type bytes"),
        ("SELECT Id FROM Account LIMIT :n", {"n": -1}, "must be a non-negative integer"),
        ("SELECT Id FROM Account OFFSET :n", {"n": "1"}, "must be a non-negative integer"),
        ("SELECT Id FROM Contact WHERE Name = 'x'; DROP TABLE records", {}, "unexpected character ';'"),
    ],
)
def test_query_errors(accounts: CircuitTransaction, soql: str, binds: dict[str, Any], message: str) -> None:
    assert message in query_error(accounts, soql, **binds)


def test_a_failed_query_leaves_the_transaction_usable(accounts: CircuitTransaction) -> None:
    query_error(accounts, "SELECT Id FROM Account WHERE Active__c = 'x'")
    assert len(names(accounts, "Name != NULL")) == 4


# --- hostile input -----------------------------------------------------------------------

HOSTILE = [
    "'; DROP TABLE circuitdb_schema; --",
    "') OR 1=1 --",
    'x" OR "1"="1',
    "%' OR '1'='1",
    "\\'; SELECT pg_sleep(10); --",
    "Robert'); DELETE FROM cdb; --\x00".replace("\x00", ""),
]


def test_binds_and_literals_are_values_never_sql(accounts: CircuitTransaction) -> None:
    for value in HOSTILE:
        assert names(accounts, "Name = :n", n=value) == []
        assert names(accounts, "Name IN :n", n=[value]) == []
        assert names(accounts, "Name LIKE :n", n=value) == []
        assert names(accounts, "Tags__c INCLUDES :n", n=[value]) == []
        escaped = value.replace("\\", "\\\\").replace("'", "\\'")
        assert names(accounts, f"Name = '{escaped}'") == []
    assert len(names(accounts, "Name != NULL")) == 4


def test_hostile_values_are_stored_verbatim(accounts: CircuitTransaction) -> None:
    for value in HOSTILE:
        (record_id,) = insert(accounts, "Account", {"Name": value, "Description": value})
        (record,) = rows(accounts, "SELECT Name, Description FROM Account WHERE Id = :id", id=record_id)
        assert record["Name"] == value and record["Description"] == value
        assert names(accounts, "Name = :n", n=value) == [value]


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT Id FROM Account'); DROP TABLE circuitdb_schema; --",
        'SELECT "name" FROM Account',
        "SELECT Id FROM circuitdb_schema",
        "SELECT Id FROM sqlite_master",
        "SELECT Id FROM pg_catalog",
        "SELECT _row FROM Account",
        "SELECT Id FROM Account WHERE _row = 1",
        "SELECT Id FROM Account WHERE Name = 'x' OR 1 = 1",
        "SELECT Id FROM Account ORDER BY 1",
        "SELECT Id FROM Account WHERE isdeleted__c = 1",
        "SELECT Name FROM Account WHERE Name = 'x' UNION SELECT definition FROM circuitdb_schema",
        "SELECT Id FROM Account WHERE Name LIKE 'x' ESCAPE '!'",
        "SELECT Id FROM Account WHERE Tags__c INCLUDES ('x') OR ''=''",
    ],
)
def test_hostile_queries_are_query_errors(accounts: CircuitTransaction, soql: str) -> None:
    with pytest.raises(QueryError):
        accounts.query(soql, {}, 10)
    assert len(names(accounts, "Name != NULL")) == 4


def test_hostile_names_never_reach_sql(accounts: CircuitTransaction) -> None:
    for bad in ['Name"; DROP TABLE x; --', "Name' OR '1'='1", "Na me", "Name--", "Name/*x*/"]:
        with pytest.raises(QueryError):
            accounts.query(f"SELECT {bad} FROM Account", {}, 10)
        with pytest.raises(QueryError):
            accounts.query(f"SELECT Id FROM Account WHERE {bad} = 'x'", {}, 10)


def test_wide_and_deep_conditions_run(accounts: CircuitTransaction) -> None:
    wide = " OR ".join(f"NumberOfEmployees = {n}" for n in range(1, MAX_CONDITIONS + 1))
    assert len(names(accounts, wide)) == 4
    assert names(accounts, "(" * MAX_DEPTH + "Name = 'Acme'" + ")" * MAX_DEPTH) == ["Acme"]
    assert names(accounts, "NOT " * MAX_DEPTH + "Name = 'Acme'") == ["Acme"]
    deep = "Name = 'Acme'"
    for _ in range(MAX_DEPTH // 2):
        deep = f"{' AND '.join(['NumberOfEmployees > 0'] * 20)} AND (Name = 'x' OR {deep})"
    assert names(accounts, deep) == ["Acme"]


def test_the_database_survives_everything(shared_store: CircuitDB) -> None:
    with shared_store.engine.connect() as conn:
        assert sa.inspect(conn).has_table("circuitdb_schema")
        assert sa.inspect(conn).has_table(shared_store.table_name("Account"))
