"""/v1/records/{object} and /v1/query: a tenant's writes fire the deployed triggers as one execution; reads are SOQL.

Rows always carry their ``Id``. A write answers 200 with the execution it ran, whatever its
outcome: a DML or trigger failure is the execution's status and error, and then nothing of the
write is kept.
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from circuit_host.server import ServerSettings
from tests.circuitdb.test_query_costs import SLOW_QUERY, seed_notes
from tests.server.routers.conftest import OTHER_SCOPE, Tenant, deploy, problem, query
from tests.server.test_end_to_end import variant

HOT_LEAD = {
    "LastName": "Raman",
    "Title": "CEO",
    "Email": "priya@acme-robotics.com",
    "LeadSource": "Referral",
    "Company_Size__c": 450,
    "Website_Visits__c": 14,
    "Emails_Opened__c": 6,
    "Called_Business__c": True,
}


def write(tenant: Tenant, object_name: str, *records: dict[str, Any], env: str = "dev", **body: Any) -> dict[str, Any]:
    answer = tenant.admin.post(f"/v1/records/{object_name}", params={"env": env}, json={"records": records, **body})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def last_names(rows: list[dict[str, Any]]) -> list[str]:
    return [row["LastName"] for row in rows]


# --- writes ------------------------------------------------------------------------------------------


def test_an_insert_fires_the_deployed_trigger_in_the_same_execution(
    acme: Tenant, vlpr_bundles: dict[str, Path]
) -> None:
    deploy(acme.admin, vlpr_bundles["1.0.0"])
    written = write(acme, "Contact", HOT_LEAD)
    assert written["execution"]["status"] == "ok" and written["execution"]["error"] is None
    assert written["created"] == [True]
    [contact] = query(acme.admin, "SELECT Id, LastName, VLPR_Grade__c, VLPR_Score__c FROM Contact")
    assert contact["Id"] == written["ids"][0]
    assert contact["VLPR_Grade__c"] == "A" and contact["VLPR_Score__c"] >= 70  # the circuit scored it
    [task] = query(acme.admin, "SELECT WhoId FROM Task")
    assert task["WhoId"] == contact["Id"]  # and its own DML ran in the same execution


def test_without_a_deployed_circuit_a_write_is_just_stored(acme: Tenant) -> None:
    written = write(acme, "Contact", {"LastName": "Plain"}, {"LastName": "Other"})
    assert written["execution"]["status"] == "ok" and len(written["ids"]) == 2
    assert sorted(last_names(query(acme.admin, "SELECT LastName FROM Contact"))) == ["Other", "Plain"]
    assert query(acme.admin, "SELECT Id FROM Task") == []


def test_writes_go_to_production_unless_another_environment_is_named(
    acme: Tenant, vlpr_bundles: dict[str, Path]
) -> None:
    deploy(acme.admin, vlpr_bundles["1.0.0"])  # in dev only
    answer = acme.admin.post("/v1/records/Contact", json={"records": [{"LastName": "Prod"}]})
    assert answer.status_code == 200, answer.text
    assert last_names(query(acme.admin, "SELECT LastName FROM Contact", env="production")) == ["Prod"]
    assert query(acme.admin, "SELECT Id FROM Contact", env="dev") == []
    default_env = acme.admin.get("/v1/query", params={"soql": "SELECT LastName FROM Contact"}).json()["records"]
    assert last_names(default_env) == ["Prod"]


def test_update_delete_and_undelete(acme: Tenant) -> None:
    [contact_id] = write(acme, "Contact", {"LastName": "Old"})["ids"]
    updated = write(acme, "Contact", {"Id": contact_id, "LastName": "New"}, op="update")
    assert updated["execution"]["status"] == "ok" and updated["ids"] == [contact_id]
    assert last_names(query(acme.admin, "SELECT LastName FROM Contact")) == ["New"]
    assert write(acme, "Contact", {"Id": contact_id}, op="delete")["execution"]["status"] == "ok"
    assert query(acme.admin, "SELECT Id FROM Contact") == []
    assert last_names(query(acme.admin, "SELECT LastName FROM Contact WHERE IsDeleted = true")) == ["New"]
    assert write(acme, "Contact", {"Id": contact_id}, op="undelete")["execution"]["status"] == "ok"
    assert [r["Id"] for r in query(acme.admin, "SELECT Id FROM Contact")] == [contact_id]


def test_an_upsert_matches_on_the_external_id(acme: Tenant, vlpr_bundles: dict[str, Path]) -> None:
    deploy(acme.admin, vlpr_bundles["1.0.0"])  # brings Circuit_Setting__c, keyed by Name
    setting = {"Name": "census_url", "Value__c": "https://a.example"}
    first = write(acme, "Circuit_Setting__c", setting, op="upsert", external_id="Name")
    again = write(
        acme, "Circuit_Setting__c", {**setting, "Value__c": "https://b.example"}, op="upsert", external_id="Name"
    )
    assert (first["created"], again["created"]) == ([True], [False])
    assert first["ids"] == again["ids"]
    rows = query(acme.admin, "SELECT Name, Value__c FROM Circuit_Setting__c")
    assert [(r["Id"], r["Name"], r["Value__c"]) for r in rows] == [(first["ids"][0], "census_url", "https://b.example")]


@pytest.mark.parametrize(
    ("records", "words"),
    [
        ([{"FirstName": "No last name"}], "LastName"),
        ([{"LastName": "X", "Nope__c": 1}], "Nope__c"),
        ([{"LastName": "Good"}, {"FirstName": "Bad"}], "LastName"),
    ],
    ids=["required-field", "unknown-field", "one-bad-row"],
)
def test_a_failed_write_is_an_errored_execution_that_keeps_nothing(
    acme: Tenant, vlpr_bundles: dict[str, Path], records: list[dict[str, Any]], words: str
) -> None:
    deploy(acme.admin, vlpr_bundles["1.0.0"])
    failed = write(acme, "Contact", *records)["execution"]
    assert failed["status"] == "error"
    assert words in failed["error"]["message"], failed
    assert query(acme.admin, "SELECT Id FROM Contact") == []


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"records": [{"Id": "003000000000000AAA", "LastName": "X"}]}, "must not be set on insert"),
        ({"records": [{"LastName": "X"}], "op": "upsert", "external_id": "Nope__c"}, "Nope__c"),
    ],
    ids=["insert-with-id", "upsert-on-unknown-key"],
)
def test_a_write_the_dml_refuses_is_an_errored_execution(acme: Tenant, body: dict[str, Any], words: str) -> None:
    answer = acme.admin.post("/v1/records/Contact?env=dev", json=body)
    assert answer.status_code == 200, answer.text
    failed = answer.json()["execution"]
    assert (failed["status"], failed["error"]["kind"]) == ("error", "dml_error")
    assert words in failed["error"]["message"], failed
    assert answer.json()["ids"] == [] and query(acme.admin, "SELECT Id FROM Contact") == []


def test_an_update_of_an_unknown_id_fails(acme: Tenant) -> None:
    failed = write(acme, "Contact", {"Id": "003000000000000AAA", "LastName": "Ghost"}, op="update")["execution"]
    assert failed["status"] == "error", failed


def test_writing_an_object_the_schema_lacks_fails(acme: Tenant) -> None:
    failed = write(acme, "Nope__c", {"Name": "x"})["execution"]
    assert failed["status"] == "error" and "Nope__c" in failed["error"]["message"], failed


def test_the_deployed_circuits_limits_govern_a_write(
    acme: Tenant, vlpr_bundles: dict[str, Path], tmp_path: Path
) -> None:
    deploy(
        acme.admin, variant(vlpr_bundles["1.0.0"], tmp_path / "strict.circuit", "2.0.0", "\n[limits]\nqueries = 0\n")
    )
    limited = write(acme, "Contact", HOT_LEAD)["execution"]
    assert limited["status"] == "limit_exceeded" and limited["error"]["resource"] == "queries"
    assert query(acme.admin, "SELECT Id FROM Contact") == []  # the trigger failed: the insert was rolled back


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/records/1Contact", {"records": [{"LastName": "X"}]}, "path.object_name"),
        ("/v1/records/Contact;DROP", {"records": [{"LastName": "X"}]}, "path.object_name"),
        ("/v1/records/Contact", {"records": []}, "body.records"),
        ("/v1/records/Contact", {"records": [{"LastName": "X"}] * 10_001}, "body.records"),
        ("/v1/records/Contact", {"records": ["not a record"]}, "body.records.0"),
        ("/v1/records/Contact", {}, "body.records"),
        ("/v1/records/Contact", {"records": [{"LastName": "X"}], "op": "merge"}, "body.op"),
        ("/v1/records/Contact", {"records": [{"LastName": "X"}], "external_id": "a-b"}, "body.external_id"),
        ("/v1/records/Contact?env=qa", {"records": [{"LastName": "X"}]}, "query.env"),
    ],
)
def test_bad_writes_are_422_naming_the_field(acme: Tenant, path: str, body: dict[str, Any], field: str) -> None:
    detail = problem(acme.admin.post(path, json=body), 422)["detail"]
    assert detail.startswith(f"{field}:") or f"; {field}:" in detail, detail
    assert query(acme.admin, "SELECT Id FROM Contact", env="production") == []


def test_a_body_that_is_not_json_is_422(acme: Tenant) -> None:
    answer = acme.admin.post("/v1/records/Contact", content=b"{not json", headers={"content-type": "application/json"})
    problem(answer, 422)


def test_an_oversized_write_is_413_before_it_is_read(acme: Tenant) -> None:
    big = acme.admin.post(
        "/v1/records/Contact", content=b"x" * (300 * 1024), headers={"content-type": "application/json"}
    )
    assert problem(big, 413)["title"] == "Request too large"


# --- reads ---------------------------------------------------------------------------------------------


def test_a_query_returns_rows_and_the_total_count(acme: Tenant) -> None:
    write(acme, "Contact", *({"LastName": f"C{n}"} for n in range(3)))
    page = acme.admin.get("/v1/query", params={"soql": "SELECT LastName FROM Contact ORDER BY LastName", "env": "dev"})
    assert last_names(page.json()["records"]) == ["C0", "C1", "C2"] and page.json()["total_size"] == 3
    limited = acme.admin.get("/v1/query", params={"soql": "SELECT LastName FROM Contact", "env": "dev", "limit": 2})
    assert len(limited.json()["records"]) == 2
    count = acme.admin.get("/v1/query", params={"soql": "SELECT COUNT() FROM Contact", "env": "dev"}).json()
    assert count["total_size"] == 3


@pytest.mark.parametrize(
    ("soql", "words"),
    [
        ("SELECT Nope FROM Contact", "Nope"),
        ("SELECT Id FROM Nope__c", "Nope__c"),
        ("SELECT FROM Contact", ""),
        ("DELETE FROM Contact", ""),
        ("SELECT Id FROM Contact WHERE LastName = :name", "name"),
    ],
    ids=["unknown-field", "unknown-object", "syntax", "not-a-select", "unbound-variable"],
)
def test_bad_soql_is_400_saying_what_is_wrong(acme: Tenant, soql: str, words: str) -> None:
    write(acme, "Contact", {"LastName": "Kept"})
    refused = problem(acme.admin.get("/v1/query", params={"soql": soql, "env": "dev"}), 400)
    assert refused["title"] == "Invalid query" and words in refused["detail"], refused
    assert last_names(query(acme.admin, "SELECT LastName FROM Contact")) == ["Kept"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({}, "query.soql"), ({"soql": ""}, "query.soql"), ({"soql": "SELECT Id FROM Contact", "limit": 0}, "query.limit")],
)
def test_bad_query_parameters_are_422_naming_them(acme: Tenant, params: dict[str, Any], field: str) -> None:
    assert field in problem(acme.admin.get("/v1/query", params=params), 422)["detail"]


def test_a_tenant_reads_and_writes_only_its_own_records(acme: Tenant, globex: Tenant) -> None:
    [acme_id] = write(acme, "Contact", {"LastName": "Acme"})["ids"]
    write(globex, "Contact", {"LastName": "Globex"})
    assert last_names(query(globex.admin, "SELECT LastName FROM Contact")) == ["Globex"]
    assert query(globex.admin, f"SELECT Id FROM Contact WHERE Id = '{acme_id}'") == []
    touched = write(globex, "Contact", {"Id": acme_id, "LastName": "Hijacked"}, op="update")["execution"]
    assert touched["status"] == "error"
    assert last_names(query(acme.admin, "SELECT LastName FROM Contact")) == ["Acme"]


# --- authentication and scopes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "scope"),
    [
        ("POST", "/v1/records/Contact", {"records": [{"LastName": "X"}]}, "deploy"),
        ("GET", "/v1/query?soql=SELECT+Id+FROM+Contact", None, "read"),
    ],
)
def test_writes_need_deploy_and_reads_need_read(
    acme: Tenant, method: str, path: str, body: dict[str, Any] | None, scope: str
) -> None:
    problem(acme.client(None).request(method, path, json=body), 401)
    problem(acme.client("cs_forged").request(method, path, json=body), 401)
    problem(acme.client(acme.key(OTHER_SCOPE[scope])).request(method, path, json=body), 403)
    assert query(acme.admin, "SELECT Id FROM Contact", env="production") == []  # nothing refused was written
    allowed = acme.client(acme.key(scope)).request(method, path, json=body)
    assert allowed.status_code == 200, allowed.text


# --- what a query may cost and say (issue 11, items 4, 12, 13) ----------------------------------


def reader(tenant: Tenant) -> Any:
    return tenant.client(tenant.key("read"))


def test_the_query_endpoint_stops_at_its_time_limit(acme: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServerSettings(data_dir=Path("unused")).query_timeout_ms == 5_000
    state = acme.server.state
    monkeypatch.setattr(state, "settings", state.settings.model_copy(update={"query_timeout_ms": 300}))
    seed_notes(state.store(acme.id, "dev"))
    started = time.monotonic()
    answer = reader(acme).get("/v1/query", params={"soql": SLOW_QUERY, "env": "dev"})
    assert time.monotonic() - started < 1.5
    refused = problem(answer, 400)
    assert refused["title"] == "Query timed out" and "300 ms" in refused["detail"]
    assert query(acme.admin, "SELECT COUNT() FROM Note__c") == []  # the endpoint still answers


def test_the_query_endpoint_caps_its_answer_in_bytes(acme: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    state = acme.server.state
    monkeypatch.setattr(state, "settings", state.settings.model_copy(update={"max_query_response_bytes": 50_000}))
    seed_notes(state.store(acme.id, "dev"), count=20, length=10_000)
    refused = problem(reader(acme).get("/v1/query", params={"soql": "SELECT Body__c FROM Note__c", "env": "dev"}), 400)
    assert refused["title"] == "Query result too large" and "50000" in refused["detail"]
    assert len(query(acme.admin, "SELECT Body__c FROM Note__c LIMIT 4")) == 4


def test_an_oversized_like_pattern_is_an_invalid_query(acme: Tenant) -> None:
    soql = f"SELECT Id FROM Contact WHERE LastName LIKE '{'%' * 201}'"
    refused = problem(reader(acme).get("/v1/query", params={"soql": soql, "env": "dev"}), 400)
    assert refused["title"] == "Invalid query" and "LIKE pattern of 201 characters" in refused["detail"]


def test_a_database_error_is_told_without_sql_or_tables(acme: Tenant) -> None:
    store = acme.server.state.store(acme.id, "dev")
    table = store.table_name("Contact")
    with store.engine.connect() as conn:  # as if another process dropped it
        conn.exec_driver_sql(f'DROP TABLE "{table}"')
    answer = reader(acme).get("/v1/query", params={"soql": "SELECT LastName FROM Contact", "env": "dev"})
    refused = problem(answer, 400)
    assert refused["detail"].startswith("query on Contact: the records store could not run it (reference ")
    for leak in ("cdb_", table, "SELECT", "[SQL"):
        assert leak not in answer.text, leak


def test_executions_beyond_the_tenants_share_or_the_servers_bound_are_refused_with_retry_after(
    acme: Tenant, globex: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """45 writes waiting on a slow callout used to stall every tenant (issue 11, item 9): executions
    are admitted up to a bound per tenant and overall; beyond it a write waits briefly for a slot
    (``admission_wait_ms``), and is refused when none frees: a sustained overload still fails fast."""
    admission = acme.server.state.admission
    monkeypatch.setattr(admission, "wait_s", 0.3)
    write = {"records": [{"LastName": "Bounded"}]}
    with ExitStack() as held:
        for _ in range(admission.max_per_tenant):
            held.enter_context(admission.admitted(acme.id))
        started = time.monotonic()
        refused = acme.admin.post("/v1/records/Contact", json=write)
        problem(refused, 429)
        assert time.monotonic() - started >= 0.3  # it waited for a slot first
        assert refused.headers["retry-after"] == "1"
        assert globex.admin.post("/v1/records/Contact", json=write).status_code == 200  # others unaffected
        for index in range(admission.max_total - admission.max_per_tenant):
            held.enter_context(admission.admitted(f"other-{index % 3}-{index}"))
        busy = globex.admin.post("/v1/records/Contact", json=write)
        problem(busy, 503)
        assert busy.headers["retry-after"] == "1"
    assert admission.running() == 0
    assert acme.admin.post("/v1/records/Contact", json=write).status_code == 200


def test_a_burst_beyond_the_tenants_share_waits_for_a_slot_and_succeeds(
    acme: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write arriving while the tenant's share is taken waits on the event loop (no thread held)
    and runs as soon as a slot frees, instead of failing with 429."""
    admission = acme.server.state.admission
    monkeypatch.setattr(admission, "wait_s", 5.0)
    write = {"records": [{"LastName": "Queued"}]}
    answers: list[int] = []
    with ExitStack() as held:
        slots = [ExitStack() for _ in range(admission.max_per_tenant)]
        for slot in slots:
            slot.enter_context(admission.admitted(acme.id))
            held.enter_context(slot)
        waiting = threading.Thread(
            target=lambda: answers.append(acme.admin.post("/v1/records/Contact", json=write).status_code)
        )
        waiting.start()
        deadline = time.monotonic() + 5
        while not admission.waiting() and time.monotonic() < deadline:  # it is queued, not refused
            time.sleep(0.01)
        assert admission.waiting() == 1 and not answers
        slots[0].close()  # one execution ends
        waiting.join(10)
    assert answers == [200]
    assert admission.running() == 0
