"""Salesforce connector against a fake org on loopback: SOQL passthrough, binds, the outbox and its dispatch."""

from __future__ import annotations

import time
from typing import Any

import pytest

from circuit_host.connectors.crm import (
    CrmAuthError,
    Outbox,
    OutboxDispatcher,
    RetryPolicy,
    SalesforceConnector,
    is_provisional,
    soql_literal,
)
from circuit_host.connectors.records import DmlOp
from circuit_host.errors import DmlError, QueryError

from ..conftest import FAST, dispatcher, sf_settings
from ..fakes import FakeSalesforce

HOSTILE = [
    "O'Brien",
    "x' OR Name != '",
    "back\\slash",
    "trailing\\",
    "\\' OR Id != null OR Name = '",
    'double "quote"',
    "line\nbreak\ttab",
    "percent % and _ underscore",
    "ünïcødé ✓",
]


# --- reads -------------------------------------------------------------------------------


def test_query_is_passed_through_and_pages_until_max_rows_plus_one(
    fake_sf: FakeSalesforce, salesforce: SalesforceConnector
) -> None:
    fake_sf.page_size = 200
    for n in range(450):
        fake_sf.add("Contact", LastName=f"L{n:03d}", Email=f"c{n}@x.test")
    with salesforce.begin() as tx:
        result = tx.query("SELECT LastName, Email FROM Contact WHERE LastName LIKE 'L%'", {}, max_rows=250)
    assert len(result.records) == 251 == result.total_size
    assert result.records[0] == {"Id": result.records[0]["Id"], "LastName": "L000", "Email": "c0@x.test"}
    assert all("attributes" not in r for r in result.records)
    pages = [r for r in fake_sf.requests if r.method == "GET"]
    assert [r.path.rsplit("/", 1)[-1] for r in pages] == ["query", "01g0-200"]  # stopped after 400 of 450
    assert "SELECT Id, LastName, Email FROM Contact" in pages[0].query["q"]


def test_count_and_parent_fields_and_datetimes(fake_sf: FakeSalesforce, salesforce: SalesforceConnector) -> None:
    fake_sf.add("Contact", LastName="A", CreatedDate="2024-05-01T10:00:00.000+0000")
    fake_sf.add("Contact", LastName="B")
    with salesforce.begin() as tx:
        assert tx.query("SELECT COUNT() FROM Contact", {}, 100).total_size == 2
        (row,) = tx.query("SELECT Id, CreatedDate FROM Contact WHERE LastName = 'A'", {}, 100).records
    assert row["CreatedDate"] == "2024-05-01T10:00:00.000Z"


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_scalar_binds_match_exactly_and_never_change_the_query(
    fake_sf: FakeSalesforce, salesforce: SalesforceConnector, value: str
) -> None:
    target = fake_sf.add("Contact", LastName=value)
    fake_sf.add("Contact", LastName="bystander")
    with salesforce.begin() as tx:
        result = tx.query("SELECT LastName FROM Contact WHERE LastName = :name", {"name": value}, 100)
    assert [(r["Id"], r["LastName"]) for r in result.records] == [(target, value)]


def test_list_binds_become_parenthesised_literals(fake_sf: FakeSalesforce, salesforce: SalesforceConnector) -> None:
    ids = [fake_sf.add("Contact", LastName=v) for v in HOSTILE]
    fake_sf.add("Contact", LastName="other")
    with salesforce.begin() as tx:
        result = tx.query("SELECT LastName FROM Contact WHERE LastName IN :names", {"names": HOSTILE}, 100)
        assert sorted(r["Id"] for r in result.records) == sorted(ids)
        assert tx.query("SELECT Id FROM Contact WHERE Id IN :none", {"none": []}, 100).records == []
    sent = fake_sf.requests[-1].query["q"]
    assert "LastName IN ('O\\'Brien', 'x\\' OR Name != \\'', 'back\\\\slash'" in sent


@pytest.mark.parametrize(
    "binds",
    [{"v": {"nested": 1}}, {"v": [["a"]]}, {"v": [{"a": 1}]}, {"v": b"bytes"}, {}, {"v": float("nan")}],
)
def test_non_scalar_or_missing_binds_are_query_errors(salesforce: SalesforceConnector, binds: dict[str, Any]) -> None:
    with salesforce.begin() as tx, pytest.raises(QueryError):
        tx.query("SELECT Id FROM Contact WHERE LastName = :v", binds, 10)


def test_soql_literals() -> None:
    assert soql_literal("a'b\\c") == "'a\\'b\\\\c'"
    assert soql_literal(None) == "null"
    assert soql_literal(True) == "true"
    assert soql_literal(12) == "12"
    assert soql_literal(1e-7) == "0.0000001"
    with pytest.raises(QueryError):
        soql_literal("nul\x00byte")


def test_parser_errors_and_salesforce_errors_reach_the_guest_as_query_errors(
    salesforce: SalesforceConnector,
) -> None:
    with salesforce.begin() as tx:
        with pytest.raises(QueryError, match="line 1, column 8"):
            tx.query("SELECT FROM Contact", {}, 10)
        with pytest.raises(QueryError, match="INVALID_TYPE: sObject type 'Nope__x' is not supported"):
            tx.query("SELECT Id FROM Nope__x", {}, 10)


def test_wrong_token_is_a_clear_auth_error(fake_sf: FakeSalesforce, sqlite_outbox: Outbox) -> None:
    connector = SalesforceConnector(sf_settings(fake_sf, access_token="wrong"), sqlite_outbox, "acme")
    with connector.begin() as tx, pytest.raises(CrmAuthError, match=r"credentials were refused.*INVALID_SESSION_ID"):
        tx.query("SELECT Id FROM Contact", {}, 10)
    assert "wrong" not in repr(connector.settings)
    connector.close()


def test_client_credentials_flow_gets_and_renews_the_token(fake_sf: FakeSalesforce, sqlite_outbox: Outbox) -> None:
    settings = sf_settings(fake_sf, access_token=None, client_id="client-id", client_secret="client-secret")
    connector = SalesforceConnector(settings, sqlite_outbox, "acme")
    with connector.begin() as tx:
        assert tx.query("SELECT COUNT() FROM Contact", {}, 10).total_size == 0
        fake_sf.token = "rotated"  # the session expires: the next request gets a new token
        assert tx.query("SELECT COUNT() FROM Contact", {}, 10).total_size == 0
    assert len([r for r in fake_sf.requests if r.path == "/services/oauth2/token"]) == 2
    connector.close()
    bad = sf_settings(fake_sf, access_token=None, client_id="client-id", client_secret="nope")
    connector = SalesforceConnector(bad, sqlite_outbox, "acme")
    with connector.begin() as tx, pytest.raises(CrmAuthError, match=r"client credentials were refused.*invalid_client"):
        tx.query("SELECT Id FROM Contact", {}, 10)
    connector.close()


def test_fetch_returns_all_fields_including_deleted_with_pending_changes(
    fake_sf: FakeSalesforce, salesforce: SalesforceConnector
) -> None:
    live = fake_sf.add("Contact", LastName="Live", Email="l@x.test")
    gone = fake_sf.add("Contact", LastName="Gone")
    fake_sf.records["contact"][gone]["IsDeleted"] = True
    with salesforce.begin() as tx:
        (new_id,) = tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "New"}]).ids
        tx.dml(DmlOp.UPDATE, "Contact", [{"Id": live, "Email": "changed@x.test"}])
        fetched = tx.fetch("Contact", [new_id, gone, "003Hs0000009999AAA", live])
    assert [r["Id"] for r in fetched] == [new_id, gone, live]
    assert fetched[0] == {"Id": new_id, "LastName": "New", "IsDeleted": False}
    assert fetched[1]["IsDeleted"] is True and fetched[1]["LastName"] == "Gone"
    assert fetched[2]["Email"] == "changed@x.test" and fetched[2]["LastName"] == "Live"


# --- writes: the outbox ---------------------------------------------------------------------


def test_dml_is_queued_not_sent_and_committed_entries_are_sent_after_commit(
    fake_sf: FakeSalesforce, outbox: Outbox
) -> None:
    connector = SalesforceConnector(sf_settings(fake_sf), outbox, "acme")
    existing = fake_sf.add("Contact", LastName="Old")
    tx = connector.begin()
    inserted = tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "Ada"}, {"LastName": "Bo"}])
    assert inserted.created == [True, True] and all(is_provisional(i) for i in inserted.ids)
    assert all(len(i) == 18 and i.startswith("003") for i in inserted.ids)
    tx.dml(DmlOp.UPDATE, "Contact", [{"Id": existing, "Email": "old@x.test"}])
    tx.dml(DmlOp.DELETE, "Contact", [{"Id": existing}])
    assert outbox.entries("acme") == []  # not visible before commit
    tx.commit()
    tx.close()
    assert fake_sf.writes() == []  # nothing is sent during the execution
    assert [(e.operation, e.status, len(e.rows)) for e in outbox.entries("acme")] == [
        ("create", "pending", 2),
        ("update", "pending", 1),
        ("delete", "pending", 1),
    ]
    report = dispatcher(outbox, "acme", connector).dispatch_once()
    assert len(report.sent) == 3 and not report.dead
    assert sorted(r["LastName"] for r in fake_sf.all("Contact")) == ["Ada", "Bo"]
    old = fake_sf.records["contact"][existing]
    assert old["IsDeleted"] is True and old["Email"] == "old@x.test"
    assert dispatcher(outbox, "acme", connector).dispatch_once().sent == []  # never sent twice
    connector.close()


def test_rollback_and_close_without_commit_send_nothing(fake_sf: FakeSalesforce, outbox: Outbox) -> None:
    connector = SalesforceConnector(sf_settings(fake_sf), outbox, "acme")
    tx = connector.begin()
    tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "Never"}])
    tx.rollback()
    tx.close()
    with connector.begin() as tx2:
        tx2.dml(DmlOp.INSERT, "Contact", [{"LastName": "Never either"}])
    assert outbox.entries("acme") == []
    assert dispatcher(outbox, "acme", connector).dispatch_once().sent == []
    assert fake_sf.writes() == []
    connector.close()


def test_savepoint_discards_the_rows_queued_inside_it(fake_sf: FakeSalesforce, outbox: Outbox) -> None:
    connector = SalesforceConnector(sf_settings(fake_sf), outbox, "acme")
    with connector.begin() as tx:
        (kept,) = tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "Kept"}]).ids
        with pytest.raises(RuntimeError), tx.savepoint():
            (dropped,) = tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "Dropped"}]).ids
            raise RuntimeError("trigger failed")
        with tx.savepoint():
            tx.dml(DmlOp.UPDATE, "Contact", [{"Id": kept, "Email": "k@x.test"}])
        assert [r["Id"] for r in tx.fetch("Contact", [kept, dropped])] == [kept]
        tx.commit()
    assert [(e.operation, e.rows) for e in outbox.entries("acme")] == [
        ("create", [{"LastName": "Kept"}]),
        ("update", [{"Id": kept, "Email": "k@x.test"}]),
    ]
    connector.close()


def test_provisional_ids_are_rewritten_in_later_operations(
    fake_sf: FakeSalesforce, salesforce: SalesforceConnector, sqlite_outbox: Outbox
) -> None:
    with salesforce.begin() as tx:
        (contact,) = tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "Ada"}]).ids
        (task,) = tx.dml(DmlOp.INSERT, "Task", [{"Subject": "Call", "WhoId": contact}]).ids
        tx.dml(DmlOp.UPDATE, "Contact", [{"Id": contact, "Email": "ada@x.test"}])
        tx.dml(DmlOp.UPDATE, "Task", [{"Id": task, "Status": "Completed"}])
        tx.commit()
    assert task.startswith("00T")
    assert len(dispatcher(sqlite_outbox, "acme", salesforce).dispatch_once().sent) == 4
    (real_contact,) = fake_sf.all("Contact")
    (real_task,) = fake_sf.all("Task")
    assert real_contact["Email"] == "ada@x.test"
    assert real_task["WhoId"] == real_contact["Id"] and real_task["Status"] == "Completed"
    # a later execution that kept the provisional id (say, in a field) still reaches the record
    with salesforce.begin() as tx:
        (row,) = tx.query("SELECT Email FROM Contact WHERE Id = :id", {"id": contact}, 10).records
        assert row["Id"] == real_contact["Id"]
        tx.dml(DmlOp.UPDATE, "Contact", [{"Id": contact, "Phone": "555"}])
        tx.commit()
    dispatcher(sqlite_outbox, "acme", salesforce).dispatch_once()
    assert fake_sf.all("Contact")[0]["Phone"] == "555"


def test_update_of_a_record_whose_insert_died_dies_with_a_reason(
    fake_sf: FakeSalesforce, salesforce: SalesforceConnector, sqlite_outbox: Outbox
) -> None:
    with salesforce.begin() as tx:
        (contact,) = tx.dml(DmlOp.INSERT, "Contact", [{"FirstName": "No last name"}]).ids
        tx.dml(DmlOp.UPDATE, "Contact", [{"Id": contact, "Email": "x@x.test"}])
        tx.commit()
    report = dispatcher(sqlite_outbox, "acme", salesforce).dispatch_once()
    assert len(report.dead) == 2
    first, second = sqlite_outbox.entries("acme")
    assert "REQUIRED_FIELD_MISSING" in (first.last_error or "") and "LastName" in (first.last_error or "")
    assert f"refers to {contact}, which entry {first.id} never created" in (second.last_error or "")


def test_bulk_insert_is_split_into_collections_of_200(
    fake_sf: FakeSalesforce, salesforce: SalesforceConnector, sqlite_outbox: Outbox
) -> None:
    with salesforce.begin() as tx:
        ids = tx.dml(DmlOp.INSERT, "Contact", [{"LastName": f"L{n}"} for n in range(450)]).ids
        tx.dml(DmlOp.UPDATE, "Contact", [{"Id": i, "Title": "t"} for i in ids])
        tx.commit()
    assert len(dispatcher(sqlite_outbox, "acme", salesforce).dispatch_once().sent) == 2
    posts = [len(r.body["records"]) for r in fake_sf.writes("POST")]
    patches = [len(r.body["records"]) for r in fake_sf.writes("PATCH")]
    assert posts == [200, 200, 50] and patches == [200, 200, 50]
    assert all(r.body["allOrNone"] is True for r in fake_sf.writes())
    assert len(fake_sf.all("Contact")) == 450 and all(r["Title"] == "t" for r in fake_sf.all("Contact"))


def test_upsert_by_external_id_uses_the_collection_upsert(
    fake_sf: FakeSalesforce, salesforce: SalesforceConnector, sqlite_outbox: Outbox
) -> None:
    known = fake_sf.add("Contact", LastName="Known", Ext__c="K1")
    with salesforce.begin() as tx:
        result = tx.dml(
            DmlOp.UPSERT,
            "Contact",
            [{"Ext__c": "k1", "LastName": "Known2"}, {"Ext__c": "N1", "LastName": "New"}],
            external_id="Ext__c",
        )
        assert result.created == [False, True] and result.ids[0] == known and is_provisional(result.ids[1])
        with pytest.raises(DmlError, match="row 1: field Ext__c: duplicate upsert key, also in row 0"):
            tx.dml(DmlOp.UPSERT, "Contact", [{"Ext__c": "A"}, {"Ext__c": "a"}], external_id="Ext__c")
        tx.commit()
    dispatcher(sqlite_outbox, "acme", salesforce).dispatch_once()
    (patch,) = fake_sf.writes("PATCH")
    assert patch.path.endswith("/composite/sobjects/Contact/Ext__c")
    assert sorted(r["LastName"] for r in fake_sf.all("Contact")) == ["Known2", "New"]
    assert sqlite_outbox.real_ids("acme", [result.ids[1]]) == {result.ids[1]: fake_sf.all("Contact")[1]["Id"]}


def test_dml_validation_names_row_and_field(salesforce: SalesforceConnector) -> None:
    with salesforce.begin() as tx:
        with pytest.raises(DmlError, match="row 1: field Id: must not be set on insert"):
            tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "a"}, {"Id": "003000000000000AAA"}])
        with pytest.raises(DmlError, match="row 0: field Id: required for update"):
            tx.dml(DmlOp.UPDATE, "Contact", [{"LastName": "a"}])
        with pytest.raises(DmlError, match="row 0: field CreatedDate: is not writeable"):
            tx.dml(DmlOp.UPDATE, "Contact", [{"Id": "003000000000000AAA", "CreatedDate": "x"}])
        with pytest.raises(DmlError, match="invalid object name"):
            tx.dml(DmlOp.INSERT, "Contact/../x", [{}])
        with pytest.raises(DmlError, match="undelete"):
            tx.dml(DmlOp.UNDELETE, "Contact", [{"Id": "003000000000000AAA"}])


# --- dispatch: retries, backoff, dead letters ---------------------------------------------


def test_server_errors_are_retried_with_backoff_then_succeed(
    fake_sf: FakeSalesforce, salesforce: SalesforceConnector, sqlite_outbox: Outbox
) -> None:
    with salesforce.begin() as tx:
        tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "Ada"}])
        tx.commit()
    fake_sf.fail(500, times=2, method="POST", body=[{"errorCode": "SERVER_ERROR", "message": "boom"}])
    policy = RetryPolicy(max_attempts=5, base_delay_s=0.01, max_delay_s=0.05, jitter=0.5)
    d = dispatcher(sqlite_outbox, "acme", salesforce, policy=policy)
    first = d.dispatch_once()
    assert first.retrying and not first.sent
    (entry,) = sqlite_outbox.entries("acme")
    assert entry.status == "pending" and entry.attempts == 1 and "500" in (entry.last_error or "")
    deadline = time.monotonic() + 5
    while not d.dispatch_once().sent:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    (entry,) = sqlite_outbox.entries("acme")
    assert entry.status == "sent" and entry.attempts == 3 and entry.last_error is None
    assert len(fake_sf.all("Contact")) == 1


def test_entries_die_after_max_attempts_with_the_error(
    fake_sf: FakeSalesforce, salesforce: SalesforceConnector, sqlite_outbox: Outbox
) -> None:
    with salesforce.begin() as tx:
        tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "Ada"}])
        tx.commit()
    with salesforce.begin() as tx:
        tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "Bo"}])
        tx.commit()
    fake_sf.fail(503, times=3, method="POST", body=[{"errorCode": "SERVER_UNAVAILABLE", "message": "down"}])
    d = dispatcher(sqlite_outbox, "acme", salesforce)  # FAST: 3 attempts, no delay
    reports = [d.dispatch_once() for _ in range(3)]
    assert [bool(r.dead) for r in reports] == [False, False, True]
    dead, after = sqlite_outbox.entries("acme")
    assert dead.status == "dead" and dead.attempts == 3 and "503" in (dead.last_error or "")
    assert after.status == "sent"  # a dead entry does not block the ones behind it
    assert [r["LastName"] for r in fake_sf.all("Contact")] == ["Bo"]
    assert sqlite_outbox.requeue_dead("acme") == 1
    assert d.dispatch_once().sent == [dead.id]


def test_retry_after_is_honoured_and_blocks_later_entries(
    fake_sf: FakeSalesforce, salesforce: SalesforceConnector, sqlite_outbox: Outbox
) -> None:
    for name in ("First", "Second"):
        with salesforce.begin() as tx:
            tx.dml(DmlOp.INSERT, "Contact", [{"LastName": name}])
            tx.commit()
    fake_sf.fail(429, headers={"Retry-After": "30"}, body=[{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "x"}])
    now = [time.time()]
    d = OutboxDispatcher(sqlite_outbox, {"acme": salesforce}, FAST, clock=lambda: now[0])
    assert d.dispatch_once().retrying
    (first, _) = sqlite_outbox.entries("acme")
    assert first.next_attempt_at is not None
    assert 29 <= (first.next_attempt_at.timestamp() - now[0] + _utc_offset(first.next_attempt_at)) <= 31
    now[0] += 20
    assert d.dispatch_once().sent == []  # still waiting, and Second waits behind First
    now[0] += 11
    assert len(d.dispatch_once().sent) == 2
    assert [r["LastName"] for r in fake_sf.all("Contact")] == ["First", "Second"]


def _utc_offset(naive: Any) -> float:
    """``naive`` is UTC; ``timestamp()`` read it as local time."""
    from datetime import UTC

    return naive.timestamp() - naive.replace(tzinfo=UTC).timestamp()


def test_a_chunk_is_not_resent_after_a_later_chunk_fails(
    fake_sf: FakeSalesforce, salesforce: SalesforceConnector, sqlite_outbox: Outbox
) -> None:
    with salesforce.begin() as tx:
        tx.dml(DmlOp.INSERT, "Contact", [{"LastName": f"L{n}"} for n in range(250)])
        tx.commit()
    fake_sf.fail_after_posts = 1  # the first collection goes through, the second gets a 500
    d = dispatcher(sqlite_outbox, "acme", salesforce)
    assert d.dispatch_once().retrying
    (entry,) = sqlite_outbox.entries("acme")
    assert entry.done == 200
    assert d.dispatch_once().sent
    assert len(fake_sf.all("Contact")) == 250


def test_idempotency_field_makes_a_resent_insert_harmless(fake_sf: FakeSalesforce, sqlite_outbox: Outbox) -> None:
    connector = SalesforceConnector(sf_settings(fake_sf, idempotency_field="Circuit_Key__c"), sqlite_outbox, "acme")
    with connector.begin() as tx:
        (pid,) = tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "Once"}]).ids
        tx.commit()
    # the org saves the record, then the answer is lost (a crash, a dropped connection)
    fake_sf.fail(500, after_applying=True, body=[{"errorCode": "SERVER_ERROR", "message": "lost"}])
    d = dispatcher(sqlite_outbox, "acme", connector)
    assert d.dispatch_once().retrying
    assert d.dispatch_once().sent
    (record,) = fake_sf.all("Contact")
    assert record["Circuit_Key__c"] == pid
    assert all(r.path.endswith("/composite/sobjects/Contact/Circuit_Key__c") for r in fake_sf.writes())
    connector.close()


def test_background_dispatcher_sends_and_stops(
    fake_sf: FakeSalesforce, salesforce: SalesforceConnector, sqlite_outbox: Outbox
) -> None:
    d = dispatcher(sqlite_outbox, "acme", salesforce, poll_interval_s=0.01)
    d.start()
    try:
        with salesforce.begin() as tx:
            tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "Async"}])
            tx.commit()
        deadline = time.monotonic() + 5
        while not fake_sf.all("Contact"):
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        d.stop()
    d.stop()  # idempotent
    assert sqlite_outbox.entries("acme")[0].status == "sent"
