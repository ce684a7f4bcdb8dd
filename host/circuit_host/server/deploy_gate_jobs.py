"""The deploy gate off the request path: a deploy to a gated environment (staging, production) is a
``deploy.gate`` job, a promotion into one a ``promote.gate`` job, and the request answers 202 with
the job's id, the gate run's id.

The job runs the deploy exactly as the request used to (``ServerState.deploy``: credentials, the
gate within ``GATE_BUDGET``, the schema applied, the version activated, the verdict recorded), in a
worker thread, so a request never holds a server thread for the length of a test run. A refusal is
the job failing with the refusal as its error, once (``max_attempts`` 1: a verdict is not retried,
and a worker that dies mid-gate ends the run rather than repeating it behind the caller's back).
A promotion is pinned when asked for: the job carries the bundles then active in the source
environment, and promotes exactly those once their gate passed (``ServerState.promote``), so a deploy to
the source environment meanwhile cannot slip an ungated version through.
Gate runs of one tenant environment run one at a time, in the order they were asked for (``lock``).
``GET /v1/gate-runs/{id}`` maps the job: waiting or running is ``pending``, succeeded is ``passed``,
dead is ``refused`` (with the refusal), cancelled is ``cancelled``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ..errors import CircuitError
from ..jobs import Job, JobQueue, JobRequest, JobRun, JobState, RetryPolicy
from ..platform import BundleInfo, GateRun, NotFound, Platform
from .server_jobs import ServerJobs

GATE_KIND = "deploy.gate"
PROMOTE_KIND = "promote.gate"
GateKind = Literal["deploy", "promotion"]
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
Promote = Callable[[str, str, str, str, "str | None", Sequence[BundleInfo]], None]
"""``(tenant, from, to, actor, circuit, bundles)``: the synchronous promotion of exactly ``bundles``,
gates included (``ServerState.promote``)."""


@dataclass(frozen=True)
class GateRequest:
    """A deploy or promotion waiting for, or past, its gate: the job, and the verdicts it recorded once
    it ran (one per circuit: a promotion may carry several)."""

    id: int
    state: GateState
    kind: GateKind
    env: str
    from_env: str | None  # a promotion's source environment
    circuits: dict[str, str]  # name -> version
    actor: str
    requested_at: datetime
    detail: str | None  # the refusal, or the verdicts' summary once passed
    verdicts: tuple[GateRun, ...]

    @property
    def circuit(self) -> str | None:
        """The circuit, when there is one (a promotion of every circuit may carry several)."""
        return next(iter(self.circuits)) if len(self.circuits) == 1 else None

    @property
    def version(self) -> str | None:
        return next(iter(self.circuits.values())) if len(self.circuits) == 1 else None

    @property
    def coverage(self) -> float | None:
        """The lowest coverage among the verdicts (``None`` before they exist)."""
        found = [v.coverage for v in self.verdicts if v.coverage is not None]
        return min(found) if found and len(found) == len(self.verdicts) else None


class DeployGateJobs:
    def __init__(self, platform: Platform, jobs: ServerJobs, deploy: Deploy, promote: Promote) -> None:
        self.platform = platform
        self.queue: JobQueue = jobs.queue
        self.deploy = deploy
        self.promote = promote
        jobs.register(GATE_KIND, self.run_gate)
        jobs.register(PROMOTE_KIND, self.run_promotion)

    def request(self, tenant_id: str, env: str, circuit: str, version: str, actor: str) -> GateRequest:
        """Queue the deploy and its gate; a bundle that does not exist is refused at once (``NotFound``)."""
        if self.platform.bundles.get_bundle(tenant_id, circuit, version) is None:
            raise NotFound(f"no bundle {circuit} {version}; upload it first")
        return self._enqueue(GATE_KIND, tenant_id, env, circuit, {"version": version, "actor": actor})

    def request_promotion(
        self, tenant_id: str, from_env: str, to_env: str, circuit: str | None, actor: str
    ) -> GateRequest:
        """Queue the promotion of what is active in ``from_env`` now (all, or ``circuit``), gates first;
        nothing to promote, or a version over the tenant's limit ceiling, is refused at once."""
        bundles = self.platform.deployments.promotion_sources(tenant_id, from_env, to_env, circuit)
        pinned = [{"name": b.name, "version": b.version, "sha256": b.sha256} for b in bundles]
        payload = {"from": from_env, "circuit": circuit, "bundles": pinned, "actor": actor}
        return self._enqueue(PROMOTE_KIND, tenant_id, to_env, circuit, payload)

    def _enqueue(
        self, kind: str, tenant_id: str, env: str, circuit: str | None, payload: dict[str, Any]
    ) -> GateRequest:
        job = self.queue.enqueue(
            JobRequest(
                kind,
                payload,
                tenant_id=tenant_id,
                circuit=circuit,
                env=env,
                retry=RetryPolicy(max_attempts=1),
                lock=f"deploy:{tenant_id}:{env}",  # deploys and promotions into one environment: in order
            )
        )
        assert job is not None  # no queueing lock: always stored
        return self._view(job)

    def get(self, tenant_id: str, gate_id: int) -> GateRequest | None:
        job = self.queue.get(gate_id, tenant_id=tenant_id)
        return None if job is None or job.kind not in (GATE_KIND, PROMOTE_KIND) else self._view(job)

    def run_gate(self, run: JobRun) -> None:
        """Raise the refusal (the job dies with it, not retried); return once deployed."""
        job = run.job
        self.deploy(job.tenant_id, str(job.env), str(job.circuit), str(job.payload["version"]), job.payload["actor"])

    def run_promotion(self, run: JobRun) -> None:
        """Gate and promote the pinned bundles; raise the first refusal (nothing promoted then)."""
        job = run.job
        bundles = []
        for pinned in job.payload["bundles"]:
            bundle = self.platform.bundles.get_bundle_by_sha(job.tenant_id, str(pinned["sha256"]))
            if bundle is None:  # pragma: no cover - bundles are never deleted
                raise NotFound(f"bundle {pinned['name']} {pinned['version']} does not exist")
            bundles.append(bundle)
        payload = job.payload
        self.promote(
            job.tenant_id, str(payload["from"]), str(job.env), str(payload["actor"]), payload["circuit"], bundles
        )

    def _view(self, job: Job) -> GateRequest:
        if job.kind == PROMOTE_KIND:
            kind: GateKind = "promotion"
            circuits = {str(b["name"]): str(b["version"]) for b in job.payload["bundles"]}
            from_env = str(job.payload["from"])
        else:
            kind, circuits, from_env = "deploy", {str(job.circuit): str(job.payload["version"])}, None
        verdicts: tuple[GateRun, ...] = ()
        if job.state in (JobState.SUCCEEDED, JobState.DEAD):
            found: dict[str, GateRun] = {}
            for g in self.platform.deployments.gate_runs(job.tenant_id, 200):  # newest first
                if g.env == job.env and circuits.get(g.circuit) == g.version and g.at >= job.created_at:
                    found.setdefault(g.circuit, g)
            verdicts = tuple(found[name] for name in circuits if name in found)
        if job.state == JobState.DEAD:
            detail: str | None = refusal(job.last_error)
        else:
            named = len(verdicts) > 1  # a promotion of several circuits says whose verdict is whose
            detail = "; ".join(
                f"{v.circuit} {v.version}: {v.detail}" if named else v.detail for v in verdicts if v.detail
            )
            detail = detail or None
        return GateRequest(
            id=job.id,
            state=_STATES[job.state],
            kind=kind,
            env=str(job.env),
            from_env=from_env,
            circuits=circuits,
            actor=str(job.payload["actor"]),
            requested_at=job.created_at,
            detail=detail,
            verdicts=verdicts,
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
