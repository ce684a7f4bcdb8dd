"""Trigger events run in Apex order, inside the execution's transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from circuit_host.circuitdb import CircuitDB
from circuit_host.errors import Rejected
from circuit_host.execution.executions import Executor
from circuit_host.execution.trigger_events import run_trigger_event

Load = Callable[[str], Any]


def contacts_in(records: CircuitDB) -> list[dict[str, Any]]:
    tx = records.begin()
    try:
        return tx.query("SELECT LastName, Title FROM Contact ORDER BY LastName", {}, max_rows=100).records
    finally:
        tx.close()


def event(operation: str, new: list[dict[str, Any]], old: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"kind": "trigger", "object": "Contact", "operation": operation, "new": new, "old": old}


def test_after_insert_sees_saved_records_with_ids(executor: Executor, load_guest: Load) -> None:
    record = run_trigger_event(executor, load_guest("echo"), event("after_insert", [{"LastName": "A"}]))
    assert record.status == "ok"
    saved = record.output["new"][0]
    assert saved["Id"].startswith("003") and len(saved["Id"]) == 18
    assert saved["LastName"] == "A"


def test_before_insert_output_is_what_gets_saved(executor: Executor, records: CircuitDB, load_guest: Load) -> None:
    record = run_trigger_event(
        executor, load_guest("before_trigger"), event("before_insert", [{"LastName": "B", "Title": "Old"}])
    )
    assert record.status == "ok", record.error
    assert contacts_in(records) == [{"Id": contacts_in(records)[0]["Id"], "LastName": "B", "Title": "Changed"}]


def test_before_trigger_returning_the_wrong_count_saves_nothing(
    executor: Executor, records: CircuitDB, load_guest: Load
) -> None:
    two = [{"LastName": "C"}, {"LastName": "D"}]
    record = run_trigger_event(executor, load_guest("before_trigger"), event("before_insert", two))
    assert record.status == "error"
    assert "returned 1 records for 2" in record.error["message"]
    assert contacts_in(records) == []


def test_after_update_saves_the_new_values_first(executor: Executor, records: CircuitDB, load_guest: Load) -> None:
    tx = records.begin()
    [contact_id] = tx.seed("Contact", [{"LastName": "E", "Title": "Before"}])
    tx.commit()
    tx.close()
    new = [{"Id": contact_id, "LastName": "E", "Title": "After"}]
    old = [{"Id": contact_id, "LastName": "E", "Title": "Before"}]
    record = run_trigger_event(executor, load_guest("echo"), event("after_update", new, old))
    assert record.status == "ok", record.error
    assert record.output["old"] == old
    assert contacts_in(records)[0]["Title"] == "After"


def test_failed_after_trigger_undoes_the_triggering_insert(
    executor: Executor, records: CircuitDB, load_guest: Load
) -> None:
    record = run_trigger_event(executor, load_guest("fail"), event("after_insert", [{"LastName": "F"}]))
    assert record.status == "error"
    assert contacts_in(records) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (event("after_explode", []), "operation"),
        (event("after_update", [{"LastName": "x"}], None), "old records"),
        (event("after_insert", [{"LastName": "x"}], [{"LastName": "y"}]), "no old records"),
        ({**event("after_insert", []), "object": "Contact; DROP TABLE records"}, "object"),
        ({**event("after_insert", []), "extra": 1}, "extra"),
    ],
)
def test_malformed_trigger_events_are_rejected(executor: Executor, load_guest: Load, data: Any, message: str) -> None:
    with pytest.raises(Rejected, match=message):
        run_trigger_event(executor, load_guest("echo"), data)


def test_a_connector_failure_fails_the_execution_not_the_host(executor: Executor, load_guest: Load) -> None:
    bad_id = {"Id": "not-an-id", "LastName": "G"}
    record = run_trigger_event(executor, load_guest("echo"), event("after_insert", [bad_id]))
    assert record.status == "error"
    assert record.error["message"]
    assert not record.committed
