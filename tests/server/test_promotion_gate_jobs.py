"""A promotion into a gated environment runs its gate in a ``promote.gate`` job (issue 11, item 6).

The server below has no job workers of its own, so the job waits in the queue while the test changes
the source environment; a worker started afterwards runs it. The promotion is pinned to what was
active when it was asked for: a deploy to the source environment meanwhile is never promoted ungated.
"""

from __future__ import annotations

from pathlib import Path

from circuit_host.jobs import Worker
from tests.server.conftest import LiveServer, gate_verdict
from tests.server.test_end_to_end import deploy, variant

LPR = "virtual_lpr"


def test_a_promotion_promotes_what_was_active_when_asked_even_if_the_source_changed(
    api_only: LiveServer, vlpr_bundles: dict[str, Path]
) -> None:
    tenant = api_only.tenant("acme")
    jobs = api_only.state.jobs
    with tenant.client(api_only) as client:
        deploy(client, vlpr_bundles["1.0.0"], env="dev")
        answer = client.post("/v1/promotions", json={"from": "dev", "to": "staging"})
        assert answer.status_code == 202, answer.text
        gate = answer.json()
        assert (gate["state"], gate["circuits"]) == ("pending", {LPR: "1.0.0"})
        deploy(client, vlpr_bundles["1.1.0"], env="dev")  # while the promotion waits for its gate
        assert client.get(f"/v1/gate-runs/{gate['gate_run']}").json()["state"] == "pending"
        assert client.get("/v1/environments/staging/circuits").json() == []
        with Worker(jobs.queue, jobs.handlers, concurrency=1):
            verdict = gate_verdict(client, answer)
        assert verdict["state"] == "passed", verdict
        assert [c["version"] for c in client.get("/v1/environments/staging/circuits").json()] == ["1.0.0"]
        [run] = client.get("/v1/gate-runs").json()
        assert (run["env"], run["version"], run["passed"]) == ("staging", "1.0.0", True)
        job = client.get(f"/v1/jobs/{gate['gate_run']}").json()
        assert (job["kind"], job["state"], job["env"]) == ("promote.gate", "succeeded", "staging")


def test_nothing_to_promote_is_refused_at_once_and_queues_nothing(
    api_only: LiveServer, vlpr_bundles: dict[str, Path]
) -> None:
    tenant = api_only.tenant("acme")
    with tenant.client(api_only) as client:
        assert client.post("/v1/promotions", json={"from": "dev", "to": "staging"}).status_code == 404
        deploy(client, vlpr_bundles["1.0.0"], env="dev")
        named = client.post("/v1/promotions", json={"from": "dev", "to": "production", "circuit": "other"})
        assert named.status_code == 404, named.text
        assert client.get("/v1/jobs", params={"kind": "promote.gate"}).json()["jobs"] == []


def test_a_refused_promotion_changes_nothing_and_a_deploy_queued_behind_it_still_runs(
    api_only: LiveServer, vlpr_bundles: dict[str, Path], tmp_path: Path
) -> None:
    tenant = api_only.tenant("acme")
    jobs = api_only.state.jobs
    untested = variant(vlpr_bundles["1.0.0"], tmp_path / "untested.circuit", "5.0.0", members=("module.wasm",))
    with tenant.client(api_only) as client:
        deploy(client, untested, env="dev")
        promotion = client.post("/v1/promotions", json={"from": "dev", "to": "production"})
        zipped = {"content-type": "application/zip"}
        assert client.post("/v1/bundles", content=vlpr_bundles["1.0.0"].read_bytes(), headers=zipped).status_code == 201
        later = client.post("/v1/environments/production/deployments", json={"circuit": LPR, "version": "1.0.0"})
        assert (promotion.status_code, later.status_code) == (202, 202)  # the deploy waits behind the promotion
        with Worker(jobs.queue, jobs.handlers, concurrency=2):
            refused = gate_verdict(client, promotion)
            passed = gate_verdict(client, later)
        assert refused["state"] == "refused" and "has no tests" in refused["detail"], refused
        assert passed["state"] == "passed", passed
        assert [c["version"] for c in client.get("/v1/environments/production/circuits").json()] == ["1.0.0"]
        actions = [(a["action"], a["env"]) for a in client.get("/v1/audit").json()]
        assert ("promote", "production") not in actions and ("deploy", "production") in actions
