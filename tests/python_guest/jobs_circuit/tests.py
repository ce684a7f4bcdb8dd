from circuit import enrich, mark, summarise
from circuit_sdk import AsyncContext, JobError, jobs, limits, records, testing


def test_an_insert_fires_the_trigger_that_enqueues():
    ids = testing.create_records("Contact", count=3, fields={"LastName": "Job {n}"})
    assert len(ids) == 3  # the trigger's jobs.enqueue returned ok, or the insert would have failed


def test_enqueue_returns_the_job_key_and_is_charged():
    job_id = jobs.enqueue("py_jobs", {"ids": [], "note": "direct"})
    assert job_id.startswith("exec:") and job_id.endswith(":0")
    assert limits.usage()["async_jobs"][0] == 1


def test_a_payload_that_is_not_json_like_is_a_job_error():
    try:
        jobs.enqueue("py_jobs", {"raw": b"bytes"})
    except JobError as exc:
        assert "payload" in str(exc)
    else:
        raise AssertionError("bytes were accepted")


def test_the_job_handler_marks_the_contacts():
    ids = testing.create_records("Contact", count=2, fields={"LastName": "Handler {n}"})
    assert enrich(AsyncContext(kind="job", payload={"ids": ids, "note": "test"}, depth=1)) == {"enriched": 2}
    rows = records.query("SELECT Enriched__c FROM Contact WHERE Id IN :ids", ids=ids)
    assert [r["Enriched__c"] for r in rows] == ["test at depth 1", "test at depth 1"]


def test_a_batch_chunk_is_marked_and_a_trap_fails_it():
    ids = testing.create_records("Py_Item__c", count=2, fields={"Name": "item {n}"})
    chunk = records.query("SELECT Id, Name FROM Py_Item__c WHERE Id IN :ids ORDER BY Id", ids=ids)
    assert mark(AsyncContext(kind="batch-execute", chunk=3, records=chunk)) == {"marked": 2}
    rows = records.query("SELECT Seen__c FROM Py_Item__c WHERE Id IN :ids", ids=ids)
    assert [r["Seen__c"] for r in rows] == ["chunk 3", "chunk 3"]
    try:
        mark(AsyncContext(kind="batch-execute", chunk=4, records=[{"Id": ids[0], "Name": "trap"}]))
    except ValueError as exc:
        assert "chunk 4 holds a trap" in str(exc)
    else:
        raise AssertionError("the trap did not fail the chunk")
    summary = {"records_processed": 2, "records_failed": 1, "chunks_ok": 1, "chunks_failed": 1}
    assert summarise(AsyncContext(kind="batch-finish", batch_id="b1", summary=summary)) == summary
