"""/v1/jobs: a tenant's jobs, filterable; one job; cancel a waiting job, retry a dead one. Nothing of another tenant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from circuit_host.jobs import EmbeddedJobQueue, Job, JobRequest, RetryPolicy
from tests.server.routers.conftest import OTHER_SCOPE, Tenant, problem


def enqueue(tenant: Tenant, kind: str = "test.idle", **fields: Any) -> Job:
    """A job no worker handles, so it waits (an hour from now unless told otherwise)."""
    fields.setdefault("run_at", datetime.now(UTC) + timedelta(hours=1))
    job = tenant.server.state.jobs.queue.enqueue(JobRequest(kind, tenant_id=tenant.id, **fields))
    assert job is not None
    return job


def dead(tenant: Tenant) -> Job:
    """A job whose only attempt failed."""
    queue = tenant.server.state.jobs.queue
    assert isinstance(queue, EmbeddedJobQueue)  # the routers' server runs on SQLite
    job = enqueue(tenant, "test.doomed", run_at=None, retry=RetryPolicy(max_attempts=1))
    [run] = queue.claim(["test.doomed"], 1)
    queue.fail(run, RuntimeError("CRM unreachable"))
    return job


def test_jobs_are_listed_newest_first_and_filtered(acme: Tenant) -> None:
    a = enqueue(acme, "test.webhook", circuit="scorer", env="production", payload={"n": 1})
    b = enqueue(acme, "test.queueable", circuit="enrich", env="dev")
    acme.admin.post(f"/v1/jobs/{b.id}/cancel")

    def ids(**params: Any) -> list[int]:
        answer = acme.admin.get("/v1/jobs", params=params)
        assert answer.status_code == 200, answer.text
        return [j["id"] for j in answer.json()["jobs"]]

    assert ids() == [b.id, a.id]
    assert ids(kind="test.webhook") == [a.id]
    assert ids(state="cancelled") == [b.id]
    assert ids(circuit="scorer", env="production") == [a.id]
    assert ids(env="dev") == [b.id]
    page = acme.admin.get("/v1/jobs", params={"limit": 1}).json()
    assert [j["id"] for j in page["jobs"]] == [b.id] and page["next_before"] == b.id
    assert ids(before=b.id) == [a.id]
    shown = acme.admin.get(f"/v1/jobs/{a.id}").json()
    assert (shown["kind"], shown["state"], shown["payload"], shown["attempts"]) == ("test.webhook", "todo", {"n": 1}, 0)
    assert problem(acme.admin.get("/v1/jobs", params={"state": "lost"}), 422)


def test_a_waiting_job_is_cancelled_once(acme: Tenant) -> None:
    job = enqueue(acme)
    cancelled = acme.admin.post(f"/v1/jobs/{job.id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    again = problem(acme.admin.post(f"/v1/jobs/{job.id}/cancel"), 409)
    assert "already cancelled" in again["detail"]


def test_a_dead_job_is_retried_and_only_a_dead_one(acme: Tenant) -> None:
    job = dead(acme)
    shown = acme.admin.get(f"/v1/jobs/{job.id}").json()
    assert shown["state"] == "dead" and shown["last_error"] == "RuntimeError: CRM unreachable"
    retried = acme.admin.post(f"/v1/jobs/{job.id}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json()["state"] == "todo"
    waiting = enqueue(acme)
    assert "only a dead job" in problem(acme.admin.post(f"/v1/jobs/{waiting.id}/retry"), 409)["detail"]


def test_another_tenants_jobs_do_not_exist(acme: Tenant, globex: Tenant) -> None:
    theirs = enqueue(globex)
    assert acme.admin.get("/v1/jobs").json()["jobs"] == []
    for answer in (
        acme.admin.get(f"/v1/jobs/{theirs.id}"),
        acme.admin.post(f"/v1/jobs/{theirs.id}/cancel"),
        acme.admin.post(f"/v1/jobs/{theirs.id}/retry"),
    ):
        problem(answer, 404)
    assert globex.admin.get(f"/v1/jobs/{theirs.id}").json()["state"] == "todo"  # untouched


@pytest.mark.parametrize(("method", "path", "scope"), [("get", "", "read"), ("post", "/cancel", "deploy")])
def test_routes_require_their_scope(acme: Tenant, method: str, path: str, scope: str) -> None:
    job = enqueue(acme)
    url = f"/v1/jobs/{job.id}{path}"
    refused = getattr(acme.client(acme.key(OTHER_SCOPE[scope])), method)(url)
    assert refused.status_code == 403
    assert getattr(acme.client(acme.key(scope)), method)(url).status_code == 200
    assert getattr(acme.client(None), method)(url).status_code == 401
