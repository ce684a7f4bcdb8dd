"""Queueable and scheduled circuits on a live server: Virtual LPR enqueues its enrichment job, the
server's worker runs it under the asynchronous limits, and ``[[schedules]]`` follow the deploys."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from circuit_host.bundles import pack_bundle
from circuit_host.toolchain.zig_build import build_circuit, build_tests
from tests.server.conftest import EXAMPLE, LiveServer
from tests.server.test_end_to_end import deploy

HOT = {
    "LastName": "Raman",
    "Title": "Chief Revenue Officer",
    "Email": "priya.raman@northwindlogistics.com",
    "Company_Size__c": 450,
    "Website_Visits__c": 14,
    "Emails_Opened__c": 3,
    "Called_Business__c": True,
    "LeadSource": "Referral",
}


def finished_job(client: httpx.Client, kind: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = client.get("/v1/jobs", params={"kind": kind}).json()["jobs"]
        done = [job for job in jobs if job["state"] not in ("todo", "doing")]
        if done:
            return dict(done[-1])
        assert time.monotonic() < deadline, f"no {kind} job finished: {jobs}"
        time.sleep(0.1)


def test_a_grade_a_contact_gets_its_enrichment_job_run_under_the_async_limits(
    live: LiveServer, vlpr_bundles: dict[str, Path]
) -> None:
    tenant = live.tenant("acme")
    with tenant.client(live) as client:
        deploy(client, vlpr_bundles["1.0.0"], env="dev")
        refused = client.post("/v1/records/Contact?env=dev", json={"records": [{"FirstName": "No last name"}]})
        assert refused.json()["execution"]["status"] == "error"  # rolled back: no job
        written = client.post("/v1/records/Contact?env=dev", json={"records": [HOT]}).json()
        assert written["execution"]["status"] == "ok"
        [contact_id] = written["ids"]
        job = finished_job(client, "circuit.job")
        assert job["state"] == "succeeded", job
        assert (job["circuit"], job["env"]) == ("virtual_lpr", "dev")
        assert job["payload"] == {"version": "1.0.0", "payload": {"contact_ids": [contact_id]}, "depth": 1}
        assert len(client.get("/v1/jobs", params={"kind": "circuit.job"}).json()["jobs"]) == 1
        execution = client.get(f"/v1/executions/{job['execution_id']}").json()
        assert execution["trigger"] == f"job:{job['id']}" and execution["status"] == "ok"
        assert execution["usage"]["queries"]["limit"] == 200
        assert execution["usage"]["timeout_ms"]["limit"] == 60_000
        assert "enriched 0 of 1 grade-A contacts" in execution["debug_log"]  # no census configured


def test_schedules_are_registered_on_deploy_and_removed_on_rollback(
    live: LiveServer, vlpr_bundles: dict[str, Path], tmp_path: Path
) -> None:
    wasm = build_circuit(EXAMPLE, tmp_path / "build")
    tests = build_tests(EXAMPLE, tmp_path / "build")
    manifest = tmp_path / "circuit.toml"
    manifest.write_text(
        (EXAMPLE / "circuit.toml").read_text().replace('version = "1.0.0"', 'version = "2.0.0"')
        + '\n[[schedules]]\nname = "catch-up"\ncron = "* * * * * *"\ntimezone = "Europe/Paris"\n'
    )
    scheduled = pack_bundle(manifest, wasm, tmp_path, tests)
    tenant = live.tenant("acme")
    source = live.state.async_circuits.deployed_schedules
    with tenant.client(live) as client:
        deploy(client, vlpr_bundles["1.0.0"], env="dev")
        assert [s for s in source() if s.tenant_id == tenant.id] == []
        deploy(client, scheduled, env="dev")
        [schedule] = [s for s in source() if s.tenant_id == tenant.id]
        assert (schedule.id, schedule.cron, schedule.timezone) == (
            f"circuit:{tenant.id}:dev:virtual_lpr:catch-up",
            "* * * * * *",
            "Europe/Paris",
        )
        job = finished_job(client, "circuit.schedule")
        assert job["state"] == "succeeded", job
        execution = client.get(f"/v1/executions/{job['execution_id']}").json()
        assert execution["trigger"] == "schedule:virtual_lpr:catch-up" and execution["status"] == "ok"
        assert "0 grade-A contacts to enrich" in execution["debug_log"]
        rolled = client.post("/v1/environments/dev/rollback", json={"circuit": "virtual_lpr"})
        assert rolled.status_code == 200, rolled.text
        assert [s for s in source() if s.tenant_id == tenant.id] == []
