"""Transactions on CircuitDB: isolation, rollback, savepoints, and many threads at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from circuit_host.circuitdb import CircuitDB, FieldDef, FieldType
from circuit_host.connectors.records import DmlOp
from circuit_host.errors import CircuitError, DmlError

from .conftest import insert, rows


def test_uncommitted_writes_are_invisible_to_other_transactions(store: CircuitDB) -> None:
    with store.begin() as writer, store.begin() as reader:
        insert(writer, "Contact", {"LastName": "A"})
        assert len(rows(writer, "SELECT Id FROM Contact")) == 1
        assert rows(reader, "SELECT Id FROM Contact") == []
        writer.commit()
        reader.rollback()
    with store.begin() as later:
        assert len(rows(later, "SELECT Id FROM Contact")) == 1


def test_rollback_discards_everything(store: CircuitDB) -> None:
    with store.begin() as tx:
        insert(tx, "Contact", {"LastName": "A"})
        tx.seed("Contact", [{"LastName": "B"}])
        tx.rollback()
    with store.begin() as tx:
        assert rows(tx, "SELECT Id FROM Contact") == []


def test_close_without_commit_rolls_back(store: CircuitDB) -> None:
    tx = store.begin()
    insert(tx, "Contact", {"LastName": "A"})
    tx.close()
    tx.close()
    with store.begin() as other:
        assert rows(other, "SELECT Id FROM Contact") == []


def test_a_closed_transaction_refuses_use(store: CircuitDB) -> None:
    tx = store.begin()
    tx.commit()
    with pytest.raises(RuntimeError, match="transaction is closed"):
        tx.query("SELECT Id FROM Contact", {}, 1)
    with pytest.raises(RuntimeError, match="transaction is closed"):
        tx.commit()
    tx.close()


def test_savepoints_undo_only_their_scope(store: CircuitDB) -> None:
    with store.begin() as tx:
        insert(tx, "Contact", {"LastName": "outer"})
        with pytest.raises(DmlError), tx.savepoint():
            insert(tx, "Contact", {"LastName": "inner"})
            with tx.savepoint():
                insert(tx, "Contact", {"LastName": "nested"})
            tx.dml(DmlOp.INSERT, "Contact", [{"FirstName": "no last name"}])
        with tx.savepoint():
            insert(tx, "Contact", {"LastName": "kept"})
            with pytest.raises(ValueError), tx.savepoint():
                insert(tx, "Contact", {"LastName": "dropped"})
                raise ValueError("any exception")
        assert [r["LastName"] for r in rows(tx, "SELECT LastName FROM Contact")] == ["outer", "kept"]
        tx.commit()
    with store.begin() as tx:
        assert [r["LastName"] for r in rows(tx, "SELECT LastName FROM Contact")] == ["outer", "kept"]


def test_a_failed_statement_inside_a_savepoint_keeps_the_transaction_usable(store: CircuitDB) -> None:
    with store.begin() as tx:
        (a,) = insert(tx, "Contact", {"LastName": "A"})
        with pytest.raises(DmlError):
            tx.dml(DmlOp.UPDATE, "Contact", [{"Id": a, "Email": "bad"}])
        tx.dml(DmlOp.UPDATE, "Contact", [{"Id": a, "Email": "good@x.com"}])
        tx.commit()
    with store.begin() as tx:
        assert rows(tx, "SELECT Email FROM Contact")[0]["Email"] == "good@x.com"


def test_a_database_error_after_a_finished_savepoint_is_undone_with_its_scope(store: CircuitDB) -> None:
    """On PostgreSQL a finished savepoint's RELEASE waits for the next control statement; a database
    error (NUL in text) before it, in an enclosing scope, must still roll back that scope cleanly."""
    nul = "a\x00b"
    with store.begin() as tx:
        with pytest.raises((DmlError, ValueError)), tx.savepoint():
            with tx.savepoint():
                insert(tx, "Contact", {"LastName": "inner"})
            tx.dml(DmlOp.INSERT, "Contact", [{"LastName": nul}])
            raise ValueError("SQLite stores NUL: fail the scope anyway")
        with tx.savepoint():
            insert(tx, "Contact", {"LastName": "kept"})
        insert(tx, "Contact", {"LastName": "after"})
        tx.commit()
    with store.begin() as tx:
        assert [r["LastName"] for r in rows(tx, "SELECT LastName FROM Contact")] == ["kept", "after"]


def test_an_insert_query_update_transaction_takes_few_round_trips(store: CircuitDB) -> None:
    """Each control statement costs a round trip on PostgreSQL: BEGIN goes with the first savepoint,
    and a savepoint's RELEASE with the next SAVEPOINT (a COMMIT releases it anyway)."""
    sent: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    with store.begin() as tx:
        ids = tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "A"}, {"LastName": "B"}]).ids
        assert len(tx.query("SELECT Id FROM Contact WHERE Id IN :ids", {"ids": ids}, 10).records) == 2
        tx.dml(DmlOp.UPDATE, "Contact", [{"Id": i, "Title": "CEO"} for i in ids])
        tx.commit()
    if store.dialect == "sqlite":  # in-process: one control statement per call
        return
    kinds = [statement.split()[0] for statement in sent]
    assert kinds == ["BEGIN;", "INSERT", "RELEASE", "SELECT", "RELEASE", "SELECT", "UPDATE", "COMMIT"]
    assert sent[0] == "BEGIN; SAVEPOINT cdb_sp1"
    assert sent[-1] == "COMMIT"


def test_sqlite_second_writer_waits_then_fails_clearly(tmp_path: Path) -> None:
    with CircuitDB(f"sqlite:///{tmp_path / 'r.db'}", busy_timeout=0.1) as store:
        with store.begin() as first, store.begin() as second:
            insert(first, "Contact", {"LastName": "A"})
            with pytest.raises(CircuitError, match="records store busy"):
                insert(second, "Contact", {"LastName": "B"})
            first.commit()
            insert(second, "Contact", {"LastName": "B"})
            second.commit()
        with store.begin() as tx:
            assert tx.query("SELECT COUNT() FROM Contact", {}, 0).total_size == 2


def test_concurrent_transactions_on_two_threads(open_db: Callable[..., CircuitDB]) -> None:
    store = open_db()
    store.add_field("Contact", FieldDef("Tag__c", FieldType.TEXT))
    store.add_field("Contact", FieldDef("Done__c", FieldType.BOOLEAN))
    per_thread = 15
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(tag: str) -> None:
        try:
            start.wait()
            for n in range(per_thread):
                with store.begin() as tx:
                    tx.seed("Contact", [{"LastName": f"{tag}{n}", "Tag__c": tag}])
                    mine = tx.query("SELECT Id FROM Contact WHERE Tag__c = :t", {"t": tag}, 1000).records
                    assert len(mine) == n + 1  # its own writes, never the other thread's uncommitted ones
                    tx.dml(DmlOp.UPDATE, "Contact", [{"Id": mine[-1]["Id"], "Done__c": True}])
                    if n % 2:
                        tx.commit()
                    else:
                        insert(tx, "Contact", {"LastName": "discarded"})
                        tx.rollback()
                        with store.begin() as again:
                            again.seed("Contact", [{"LastName": f"{tag}{n}", "Tag__c": tag, "Done__c": True}])
                            again.commit()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(tag,)) for tag in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.begin() as tx:
        assert tx.query("SELECT COUNT() FROM Contact WHERE Done__c = TRUE", {}, 0).total_size == 2 * per_thread
        assert tx.query("SELECT COUNT() FROM Contact", {}, 0).total_size == 2 * per_thread


def test_concurrent_unique_inserts_one_wins(open_db: Callable[..., CircuitDB]) -> None:
    store = open_db()
    store.add_field("Contact", FieldDef("Key__c", FieldType.TEXT, external_id=True))
    outcomes: list[str] = []
    start = threading.Barrier(4)

    def work(n: int) -> None:
        start.wait()
        try:
            with store.begin() as tx:
                tx.dml(DmlOp.UPSERT, "Contact", [{"Key__c": "same", "LastName": f"n{n}"}], "Key__c")
                tx.commit()
            outcomes.append("ok")
        except (DmlError, CircuitError) as e:
            outcomes.append(str(e))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert "ok" in outcomes
    for outcome in outcomes:
        assert outcome == "ok" or "duplicate value" in outcome
    with store.begin() as tx:
        assert tx.query("SELECT COUNT() FROM Contact", {}, 0).total_size == 1
