"""The schema registry: standard objects, custom definitions from a manifest, migrations
that persist and survive concurrency, and tenants that never see each other."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from circuit_host.circuitdb import (
    STANDARD_OBJECTS,
    CircuitDB,
    FieldDef,
    FieldType,
    SchemaChanges,
    open_store,
    parse_schema,
    read_schema,
)
from circuit_host.connectors.records import DmlOp
from circuit_host.errors import DmlError, QueryError, Rejected

from .conftest import insert, query_error, rows

MANIFEST = Path(__file__).parents[2] / "examples" / "virtual_lpr" / "circuit.toml"
OpenDb = Callable[..., CircuitDB]


def test_standard_objects_have_the_fields_a_salesforce_user_expects() -> None:
    by_name = {o.name: o for o in STANDARD_OBJECTS}
    expected = {
        "Contact": "FirstName LastName Email Phone Title Department AccountId LeadSource MailingStreet MailingCity "
        "MailingState MailingPostalCode MailingCountry OwnerId CreatedDate LastModifiedDate",
        "Task": "Subject Status Priority ActivityDate WhoId OwnerId Description",
        "Account": "Name Industry Website Phone NumberOfEmployees AnnualRevenue BillingStreet BillingCity",
        "Opportunity": "Name StageName CloseDate Amount AccountId",
        "User": "Username Email FirstName LastName IsActive",
        "Lead": "FirstName LastName Company Email Status LeadSource",
    }
    for name, fields in expected.items():
        obj = by_name[name]
        for field in [*fields.split(), "Id", "IsDeleted", "CreatedDate", "LastModifiedDate"]:
            assert obj.field(field) is not None, f"{name}.{field}"
    contact = by_name["Contact"]
    assert contact.field("LastName").required  # type: ignore[union-attr]
    assert contact.field("AccountId").reference_to == ("Account",)  # type: ignore[union-attr]
    assert by_name["Task"].field("WhoId").reference_to == ("Contact", "Lead")  # type: ignore[union-attr]
    assert by_name["Account"].field("Name").required  # type: ignore[union-attr]


# --- the manifest ------------------------------------------------------------------------


def test_the_virtual_lpr_manifest() -> None:
    changes = read_schema(MANIFEST)
    fields = {(o, f.name): f for o, f in changes.fields}
    assert {name for _, name in fields} == {
        "Company_Size__c", "Website_Visits__c", "Emails_Opened__c", "Called_Business__c",
        "VLPR_Score__c", "VLPR_Grade__c", "Next_Action__c", "Household_Income__c",
    }  # fmt: skip
    assert fields[("Contact", "VLPR_Score__c")].scale == 0
    assert fields[("Contact", "VLPR_Grade__c")].values == ("A", "B", "C", "D")
    assert fields[("Contact", "Called_Business__c")].type is FieldType.BOOLEAN
    assert fields[("Contact", "Next_Action__c")].length == 255
    (setting,) = changes.objects
    assert setting.name == "Circuit_Setting__c"
    name = setting.field("Name")
    assert name is not None and name.unique and name.external_id
    assert setting.field("Value__c").length == 1000  # type: ignore[union-attr]


def test_the_manifest_applies_and_is_idempotent(store: CircuitDB) -> None:
    changes = read_schema(MANIFEST)
    store.apply_schema(changes)
    store.apply_schema(changes)
    with store.begin() as tx:
        insert(tx, "Contact", {"LastName": "A", "Company_Size__c": 12.9, "VLPR_Score__c": 96, "VLPR_Grade__c": "A"})
        tx.dml(DmlOp.UPSERT, "Circuit_Setting__c", [{"Name": "census_url", "Value__c": "https://a"}], "Name")
        tx.dml(DmlOp.UPSERT, "Circuit_Setting__c", [{"Name": "CENSUS_URL", "Value__c": "https://b"}], "Name")
        (contact,) = rows(tx, "SELECT Company_Size__c, VLPR_Score__c, VLPR_Grade__c FROM Contact")
        assert (contact["Company_Size__c"], contact["VLPR_Score__c"], contact["VLPR_Grade__c"]) == (12.9, 96, "A")
        settings = rows(tx, "SELECT Value__c FROM Circuit_Setting__c WHERE Name = 'census_url' LIMIT 1")
        assert [s["Value__c"] for s in settings] == ["https://b"]
        assert settings[0]["Id"].startswith("a")


def test_the_loader_ignores_other_tables() -> None:
    document = {"circuit": {"name": "x"}, "bundle": {"anything": [1]}, "triggers": [{"object": "Contact"}]}
    assert parse_schema(document) == SchemaChanges()


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"objects": {}}, "schema.objects must be an array of tables"),
        ({"tables": []}, "schema: unknown key 'tables'"),
        ({"objects": [{"name": "Bad"}]}, "schema.objects[0] (Bad): object name 'Bad' must"),
        ({"objects": [{"name": "A__c", "colour": 1}]}, "schema.objects[0] (A__c): unknown key 'colour'"),
        (
            {"objects": [{"name": "A__c", "fields": [{"name": "X__c", "type": "text", "lenght": 5}]}]},
            "schema.objects[0].fields[0] (A__c.X__c): unknown key 'lenght'",
        ),
        (
            {"objects": [{"name": "A__c", "fields": [{"name": "Plain", "type": "text"}]}]},
            "schema.objects[0].fields[0] (A__c.Plain): field name 'Plain' must",
        ),
        ({"fields": [{"name": "X__c", "type": "text"}]}, "schema.fields[0]: object (the object's name) is required"),
        ({"fields": [{"object": "Contact", "type": "text"}]}, "schema.fields[0]: name is required"),
        ({"fields": [{"object": "Contact", "name": "X__c"}]}, "schema.fields[0] (Contact.X__c): type is required"),
        (
            {"fields": [{"object": "Contact", "name": "X__c", "type": "varchar"}]},
            "schema.fields[0] (Contact.X__c): unknown type 'varchar'",
        ),
        (
            {"fields": [{"object": "Contact", "name": "X__c", "type": "text", "length": "5"}]},
            "schema.fields[0] (Contact.X__c): length has the wrong type (str)",
        ),
        (
            {"fields": [{"object": "Contact", "name": "X__c", "type": "number", "scale": True}]},
            "scale has the wrong type (bool)",
        ),
        (
            {"fields": [{"object": "Contact", "name": "X__c", "type": "picklist"}]},
            "schema.fields[0] (Contact.X__c): a restricted picklist needs values",
        ),
        (
            {"fields": [{"object": "Contact", "name": "X__c", "type": "picklist", "values": ["a", "A"]}]},
            "picklist value 'A' is listed twice",
        ),
        (
            {"fields": [{"object": "Contact", "name": "X__c", "type": "picklist", "values": ["a;b"]}]},
            "picklist value 'a;b' must be a non-empty string without ';'",
        ),
        (
            {"fields": [{"object": "Contact", "name": "X__c", "type": "boolean", "unique": True}]},
            "a boolean field cannot be unique or an external id",
        ),
        (
            {"fields": [{"object": "Contact", "name": "X__c", "type": "reference"}]},
            "a reference field needs reference_to",
        ),
        (
            {"fields": [{"object": "Contact", "name": "X__c", "type": "number", "precision": 5, "scale": 6}]},
            "scale must be from 0 to the precision (5)",
        ),
        (
            {"fields": [{"object": "Contact", "name": "X__c", "type": "text", "length": 0}]},
            "length must be from 1 to 131072",
        ),
        (
            {"fields": [{"object": "Contact", "name": "X__c", "type": "number", "default": "five"}]},
            "default 'five': expected a number, got a string",
        ),
        ({"fields": [{"object": "Contact", "name": "Email", "type": "text"}]}, "field name 'Email' must"),
        ({"fields": [{"object": "Contact", "name": "A__b__c", "type": "text"}]}, "must not contain '__'"),
        ({"fields": [{"object": "Contact", "name": "X" * 39 + "__c", "type": "text"}]}, "at most 41 characters"),
    ],
)
def test_manifest_errors_name_the_entry(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(Rejected) as info:
        parse_schema({"schema": schema}, "circuit.toml")
    assert str(info.value).startswith("circuit.toml: ") and message in str(info.value)


def test_an_unreadable_manifest_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "circuit.toml"
    bad.write_text("[schema\n")
    with pytest.raises(Rejected, match="invalid TOML"):
        read_schema(bad)


# --- migrations --------------------------------------------------------------------------


def test_add_a_field_then_query_it(store: CircuitDB) -> None:
    with store.begin() as tx:
        (old,) = insert(tx, "Contact", {"LastName": "Before"})
        assert "no field 'Rank__c' on Contact" in query_error(tx, "SELECT Rank__c FROM Contact")
        tx.commit()
    store.add_field("Contact", FieldDef("Rank__c", FieldType.NUMBER, scale=0, unique=True))
    with store.begin() as tx:
        insert(tx, "Contact", {"LastName": "After", "Rank__c": 1})
        got = rows(tx, "SELECT LastName, Rank__c FROM Contact ORDER BY Rank__c NULLS FIRST")
        assert got == [
            {"Id": old, "LastName": "Before", "Rank__c": None},
            {"Id": got[1]["Id"], "LastName": "After", "Rank__c": 1},
        ]
        with pytest.raises(DmlError, match="row 0: field Rank__c: duplicate value 1, already used by"):
            tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "x", "Rank__c": 1}])


def test_definitions_and_records_persist_across_reopening(open_db: OpenDb) -> None:
    first = open_db()
    first.apply_schema(read_schema(MANIFEST))
    first.add_field("Account", FieldDef("Tier__c", FieldType.PICKLIST, values=("Gold", "Silver"), multi=True))
    with first.begin() as tx:
        (record_id,) = insert(tx, "Account", {"Name": "Acme", "Tier__c": "gold;silver"})
        tx.commit()
    prefix = first.schema.object("Circuit_Setting__c").prefix  # type: ignore[union-attr]
    first.close()
    again = open_db(first.tenant)
    assert again.schema.object("Circuit_Setting__c").prefix == prefix  # type: ignore[union-attr]
    assert again.schema.object("Contact").field("vlpr_grade__c").values == ("A", "B", "C", "D")  # type: ignore[union-attr]
    with again.begin() as tx:
        assert rows(tx, "SELECT Tier__c FROM Account WHERE Tier__c INCLUDES ('Silver')") == [
            {"Id": record_id, "Tier__c": "Gold;Silver"}
        ]


def test_a_field_added_by_another_process_is_picked_up(open_db: OpenDb) -> None:
    mine = open_db()
    theirs = open_db(mine.tenant)
    theirs.add_field("Lead", FieldDef("Score__c", FieldType.NUMBER, scale=0))
    with mine.begin() as tx:
        insert(tx, "Lead", {"LastName": "L", "Company": "C", "Score__c": 5})
        assert rows(tx, "SELECT Score__c FROM Lead")[0]["Score__c"] == 5


def test_incompatible_changes_are_rejected(store: CircuitDB) -> None:
    store.add_field("Contact", FieldDef("Level__c", FieldType.NUMBER, scale=0))
    with pytest.raises(Rejected, match=r"field Contact.Level__c: its type is number; changing it to text"):
        store.add_field("Contact", FieldDef("Level__c", FieldType.TEXT))
    with pytest.raises(Rejected, match="between integer"):
        store.add_field("Contact", FieldDef("Level__c", FieldType.NUMBER, scale=2))
    with pytest.raises(Rejected, match="unique"):
        store.add_field("Contact", FieldDef("Level__c", FieldType.NUMBER, scale=0, unique=True))
    store.add_field("Contact", FieldDef("Level__c", FieldType.NUMBER, scale=0, precision=3, label="Level"))
    assert store.schema.object("Contact").field("Level__c").precision == 3  # type: ignore[union-attr]
    with pytest.raises(Rejected, match="object Contact: object name 'Contact' must"):
        store.define_object("Contact")
    with pytest.raises(Rejected, match="unknown object 'Nothing__c'"):
        store.add_field("Nothing__c", FieldDef("X__c", FieldType.TEXT))
    with pytest.raises(Rejected, match="reference_to names unknown object 'Nope__c'"):
        store.add_field("Contact", FieldDef("X__c", FieldType.REFERENCE, reference_to=("Nope__c",)))


def test_tenants_never_see_each_other(open_db: OpenDb) -> None:
    a, b = open_db(), open_db()
    a.add_field("Contact", FieldDef("Only_A__c", FieldType.TEXT))
    b.add_field("Contact", FieldDef("Only_B__c", FieldType.BOOLEAN))
    with a.begin() as tx:
        insert(tx, "Contact", {"LastName": "A", "Only_A__c": "x"})
        tx.commit()
    with b.begin() as tx:
        insert(tx, "Contact", {"LastName": "B", "Only_B__c": True})
        tx.commit()
    with a.begin() as tx:
        assert [r["LastName"] for r in rows(tx, "SELECT LastName FROM Contact")] == ["A"]
        assert "no field 'Only_B__c'" in query_error(tx, "SELECT Only_B__c FROM Contact")
    with b.begin() as tx:
        assert [r["LastName"] for r in rows(tx, "SELECT LastName FROM Contact")] == ["B"]
        with pytest.raises(QueryError):
            tx.query("SELECT Only_A__c FROM Contact", {}, 1)
    assert a.table_name("Contact") != b.table_name("Contact")


def test_table_names_are_safe_for_any_tenant(open_db: OpenDb) -> None:
    db = open_db("'; DROP TABLE circuitdb_schema; -- " + "x" * 150)
    db.define_object("A" * 38 + "__c")
    name = db.table_name("A" * 38 + "__c")
    assert len(name) <= 63 and name.startswith("cdb_") and name == name.lower()
    with db.begin() as tx:
        insert(tx, "A" * 38 + "__c", {"Name": "ok"})
        tx.commit()
    with db.engine.connect() as conn:
        assert sa.inspect(conn).has_table("circuitdb_schema")
    with pytest.raises(Rejected, match="tenant"):
        CircuitDB(str(db.engine.url.render_as_string(hide_password=False)), "")


def test_concurrent_migrations(open_db: OpenDb) -> None:
    tenant = open_db().tenant
    stores = [open_db(tenant) for _ in range(3)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(stores))

    def migrate(n: int, db: CircuitDB) -> None:
        try:
            start.wait()
            db.apply_schema(read_schema(MANIFEST))
            db.add_field("Contact", FieldDef(f"Own_{n}__c", FieldType.TEXT))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=migrate, args=(n, db)) for n, db in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with open_db(tenant).begin() as tx:
        assert rows(tx, "SELECT Own_0__c, Own_1__c, Own_2__c, VLPR_Score__c FROM Contact") == []


def test_open_store_targets(tmp_path: Path, backend: str, url: str) -> None:
    temporary = open_store(None, "t")
    path = temporary.path
    assert path is not None and path.exists()
    temporary.close()
    temporary.close()
    assert not path.exists()
    with pytest.raises(RuntimeError, match="records store is closed"):
        temporary.begin()
    for target in (tmp_path / "a.db", str(tmp_path / "b.db"), f"sqlite:///{tmp_path / 'c.db'}"):
        with open_store(target) as db:
            assert db.dialect == "sqlite" and db.path is not None and db.path.exists()
    if backend == "postgresql":
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        db = open_store(plain, "open-store-test")
        assert db.dialect == "postgresql"
        db.drop_tenant()
    with pytest.raises(Rejected, match="unsupported database URL"):
        open_store("mysql://x/y")


def test_record_ids_of_a_batch_are_base62_unique_and_unbiased() -> None:
    """One random read serves a whole batch; every character is still uniform over base62."""
    from collections import Counter

    from circuit_host.circuitdb.schema import _BASE62, is_record_id, new_record_ids

    ids = new_record_ids("003", 4000)
    assert len(ids) == 4000 and len(set(ids)) == 4000
    assert all(is_record_id(i, "003") for i in ids)
    counts = Counter("".join(i[3:] for i in ids))
    assert set(counts) == set(_BASE62)  # 60,000 characters: each of the 62 expected ~968 times
    low = sum(counts[c] for c in _BASE62[:8]) / 8  # a plain byte % 62 would favour these by 25%
    rest = sum(counts[c] for c in _BASE62[8:]) / 54
    assert 0.9 < low / rest < 1.1
    assert new_record_ids("a01", 0) == []
