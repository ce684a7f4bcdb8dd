"""The deploy gate off the request path: a deploy to a gated environment (staging, production) is a
``deploy.gate`` job, and the request answers 202 with its id, the gate run's id.

The job runs the deploy exactly as the request used to (``ServerState.deploy``: credentials, the
gate within ``GATE_BUDGET``, the schema applied, the version activated, the verdict recorded), in a
worker thread, so a request never holds a server thread for the length of a test run. A refusal is
the job failing with the refusal as its error, once (``max_attempts`` 1: a verdict is not retried,
and a worker that dies mid-gate ends the run rather than repeating it behind the caller's back).
Gate runs of one tenant environment run one at a time, in the order they were asked for (``lock``).
``GET /v1/gate-runs/{id}`` maps the job: waiting or running is ``pending``, succeeded is ``passed``,
dead is ``refused`` (with the refusal), cancelled is ``cancelled``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ..errors import CircuitError
from ..jobs import Job, JobFilter, JobQueue, JobRequest, JobRun, JobState, RetryPolicy
from ..platform import GateRun, NotFound, Platform
from .server_jobs import ServerJobs

GATE_KIND = "deploy.gate"
GateState = Literal["pending", "passed", "refused", "cancelled"]
_STATES: dict[JobState, GateState] = {
    JobState.TODO: "pending",
    JobState.DOING: "pending",
    JobState.SUCCEEDED: "passed",
    JobState.DEAD: "refused",
    JobState.CANCELLED: "cancelled",
}

Deploy = Callable[[str, str, str, str, str], None]
"""``(tenant, env, circuit, version, actor)``: the synchronous deploy, gate included (``ServerState.deploy``)."""


@dataclass(frozen=True)
class GateRequest:
    """A deploy waiting for, or past, its gate: the job, and the verdict it recorded once it ran."""

    id: int
    state: GateState
    env: str
    circuit: str
    version: str
    actor: str
    requested_at: datetime
    detail: str | None  # the refusal, or the verdict's summary once passed
    verdict: GateRun | None


class DeployGateJobs:
    def __init__(self, platform: Platform, jobs: ServerJobs, deploy: Deploy) -> None:
        self.platform = platform
        self.queue: JobQueue = jobs.queue
        self.deploy = deploy
        jobs.register(GATE_KIND, self.run_gate)

    def request(self, tenant_id: str, env: str, circuit: str, version: str, actor: str) -> GateRequest:
        """Queue the deploy and its gate; a bundle that does not exist is refused at once (``NotFound``)."""
        if self.platform.bundles.get_bundle(tenant_id, circuit, version) is None:
            raise NotFound(f"no bundle {circuit} {version}; upload it first")
        job = self.queue.enqueue(
            JobRequest(
                GATE_KIND,
                {"version": version, "actor": actor},
                tenant_id=tenant_id,
                circuit=circuit,
                env=env,
                retry=RetryPolicy(max_attempts=1),
                lock=f"deploy:{tenant_id}:{env}",
            )
        )
        assert job is not None  # no queueing lock: always stored
        return self._view(job)

    def get(self, tenant_id: str, gate_id: int) -> GateRequest | None:
        job = self.queue.get(gate_id, tenant_id=tenant_id)
        return None if job is None or job.kind != GATE_KIND else self._view(job)

    def pending(self, tenant_id: str) -> list[GateRequest]:
        """Gate runs still waiting or running, newest first."""
        found = []
        for state in (JobState.DOING, JobState.TODO):
            found += self.queue.list_jobs(JobFilter(tenant_id=tenant_id, kind=GATE_KIND, state=state))
        return [self._view(j) for j in sorted(found, key=lambda j: -j.id)]

    def run_gate(self, run: JobRun) -> None:
        """Raise the refusal (the job dies with it, not retried); return once deployed."""
        job = run.job
        self.deploy(job.tenant_id, str(job.env), str(job.circuit), str(job.payload["version"]), job.payload["actor"])

    def _view(self, job: Job) -> GateRequest:
        state = _STATES[job.state]
        verdict = None
        if job.state in (JobState.SUCCEEDED, JobState.DEAD):
            verdict = next(
                (
                    g
                    for g in self.platform.deployments.gate_runs(job.tenant_id, 200)
                    if (g.env, g.circuit, g.version) == (job.env, job.circuit, job.payload["version"])
                    and g.at >= job.created_at
                ),
                None,
            )
        detail = refusal(job.last_error) if job.state == JobState.DEAD else verdict.detail if verdict else None
        return GateRequest(
            id=job.id,
            state=state,
            env=str(job.env),
            circuit=str(job.circuit),
            version=str(job.payload["version"]),
            actor=str(job.payload["actor"]),
            requested_at=job.created_at,
            detail=detail,
            verdict=verdict,
        )


def refusal(last_error: str | None) -> str:
    """The refusal as the request used to answer it: the job's error without its exception type."""
    if not last_error:
        return "the deploy gate did not finish"
    kind, _, message = last_error.partition(": ")
    known = {c.__name__ for c in _circuit_errors()}
    return message if kind in known else last_error


def _circuit_errors() -> list[type[CircuitError]]:
    found: list[type[CircuitError]] = []
    pending: list[type[CircuitError]] = [CircuitError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found
