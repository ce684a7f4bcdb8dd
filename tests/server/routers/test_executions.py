"""/v1/executions: every execution a tenant's changes ran, newest first and filterable; one with its debug log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.server.routers.conftest import OTHER_SCOPE, Tenant, deploy, problem


def run(tenant: Tenant, *records: dict[str, Any], env: str = "dev") -> dict[str, Any]:
    """Write Contacts through the records API; the execution it ran."""
    answer = tenant.admin.post("/v1/records/Contact", params={"env": env}, json={"records": records})
    assert answer.status_code == 200, answer.text
    execution: dict[str, Any] = answer.json()["execution"]
    return execution


def listed(tenant: Tenant, **params: Any) -> dict[str, Any]:
    answer = tenant.admin.get("/v1/executions", params=params)
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    return page


def test_an_execution_is_stored_with_what_ran_and_its_debug_log(acme: Tenant, vlpr_bundles: dict[str, Path]) -> None:
    deploy(acme.admin, vlpr_bundles["1.0.0"])
    summary = run(acme, {"LastName": "Logged", "Company_Size__c": 300})
    stored = acme.admin.get(f"/v1/executions/{summary['id']}")
    assert stored.status_code == 200, stored.text
    execution = stored.json()
    assert (execution["id"], execution["status"], execution["env"]) == (summary["id"], "ok", "dev")
    assert (execution["circuit"], execution["version"]) == ("virtual_lpr", "virtual_lpr@1.0.0")
    assert execution["trigger"] == "api:Contact.insert" and execution["error"] is None
    assert execution["usage"]["dml_statements"]["used"] >= 1  # the circuit's update of the Contact
    assert all(set(u) == {"used", "limit"} for u in execution["usage"].values())
    started = datetime.fromisoformat(execution["started_at"])
    assert abs(datetime.now(UTC) - started) < timedelta(minutes=1)
    for event in ("EXECUTION_START", "DML|", "CODE_UNIT_STARTED", "LIMIT_USAGE", "EXECUTION_END"):
        assert event in execution["debug_log"], event


def test_the_list_is_newest_first_and_leaves_the_debug_logs_out(acme: Tenant) -> None:
    ids = [run(acme, {"LastName": f"C{n}"})["id"] for n in range(3)]
    page = listed(acme)
    assert [e["id"] for e in page["executions"]] == ids[::-1]
    assert all(e["debug_log"] is None for e in page["executions"])
    assert page["next_before"] is None
    first = page["executions"][0]
    assert (first["circuit"], first["version"], first["status"]) == ("-", "-", "ok")  # nothing was deployed


def test_a_failed_execution_is_stored_with_its_error(acme: Tenant) -> None:
    summary = run(acme, {"FirstName": "No last name"})
    assert summary["status"] == "error"
    stored = acme.admin.get(f"/v1/executions/{summary['id']}").json()
    assert stored["status"] == "error" and "LastName" in stored["error"]


def test_pages_follow_next_before(acme: Tenant) -> None:
    ids = [run(acme, {"LastName": f"C{n}"})["id"] for n in range(5)][::-1]
    first = listed(acme, limit=2)
    assert [e["id"] for e in first["executions"]] == ids[:2] and first["next_before"] == ids[1]
    second = listed(acme, limit=2, before=first["next_before"])
    assert [e["id"] for e in second["executions"]] == ids[2:4]
    last = listed(acme, limit=2, before=second["next_before"])
    assert [e["id"] for e in last["executions"]] == ids[4:] and last["next_before"] is None


def test_filters_by_environment_status_circuit_and_time(acme: Tenant, vlpr_bundles: dict[str, Path]) -> None:
    deploy(acme.admin, vlpr_bundles["1.0.0"])
    scored = run(acme, {"LastName": "Scored"})
    failed = run(acme, {"FirstName": "Nameless"})
    in_production = run(acme, {"LastName": "Prod"}, env="production")

    def ids(**params: Any) -> list[str]:
        return [e["id"] for e in listed(acme, **params)["executions"]]

    assert ids(env="production") == [in_production["id"]]
    assert ids(env="dev") == [failed["id"], scored["id"]]
    assert ids(status="error") == [failed["id"]]
    assert ids(circuit="virtual_lpr") == [failed["id"], scored["id"]]
    assert ids(circuit="no_such_circuit") == []
    now = datetime.now(UTC)
    assert len(ids(since=(now - timedelta(minutes=5)).isoformat())) == 3
    assert ids(since=(now + timedelta(minutes=5)).isoformat()) == []
    assert ids(until=(now - timedelta(minutes=5)).isoformat()) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": 501}, "query.limit"),
        ({"since": "yesterday"}, "query.since"),
        ({"until": "2026-13-45"}, "query.until"),
        ({"env": "qa"}, "query.env"),
    ],
)
def test_bad_filters_are_422_naming_them(acme: Tenant, params: dict[str, Any], field: str) -> None:
    assert field in problem(acme.admin.get("/v1/executions", params=params), 422)["detail"]


def test_an_unknown_execution_is_404_and_so_is_a_page_after_it(acme: Tenant) -> None:
    assert "no-such-id" in problem(acme.admin.get("/v1/executions/no-such-id"), 404)["detail"]
    assert "no-such-id" in problem(acme.admin.get("/v1/executions", params={"before": "no-such-id"}), 404)["detail"]


def test_another_tenants_executions_are_invisible(acme: Tenant, globex: Tenant) -> None:
    mine = run(acme, {"LastName": "Private"})
    problem(globex.admin.get(f"/v1/executions/{mine['id']}"), 404)
    assert listed(globex)["executions"] == []
    problem(globex.admin.get("/v1/executions", params={"before": mine["id"]}), 404)  # as for an id never used
    assert [e["id"] for e in listed(acme)["executions"]] == [mine["id"]]


@pytest.mark.parametrize("path", ["/v1/executions", "/v1/executions/some-id"])
def test_reading_executions_needs_the_read_scope(acme: Tenant, path: str) -> None:
    problem(acme.client(None).get(path), 401)
    problem(acme.client("cs_forged").get(path), 401)
    problem(acme.client(acme.key(OTHER_SCOPE["read"])).get(path), 403)
    assert acme.client(acme.key("read")).get("/v1/executions").status_code == 200


def test_time_filters_in_any_offset_mean_the_same_instant(acme: Tenant) -> None:
    run(acme, {"LastName": "Now"})
    earlier = datetime.now(UTC) - timedelta(minutes=30)
    for offset in (timedelta(hours=2), timedelta(hours=-5)):
        since = earlier.astimezone(timezone(offset)).isoformat()
        assert len(listed(acme, since=since)["executions"]) == 1, since
        assert listed(acme, until=since)["executions"] == [], since


def test_a_time_filter_without_an_offset_is_read_as_utc(acme: Tenant) -> None:
    run(acme, {"LastName": "Now"})
    naive = (datetime.now(UTC) - timedelta(minutes=5)).replace(tzinfo=None).isoformat()
    answer = acme.admin.get("/v1/executions", params={"since": naive})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["executions"]) == 1
    later = (datetime.now(UTC) + timedelta(minutes=5)).replace(tzinfo=None).isoformat()
    assert acme.admin.get("/v1/executions", params={"since": later}).json()["executions"] == []
