"""Deploys, promotions and rollbacks per environment, the audit trail, and webhook URLs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from ...connectors.crm import crm_registry
from ...platform import GateRun
from ..auth import Caller, require, state_of
from ..deploy_gate_jobs import GateRequest
from ..problems import Problem
from ..state import GATED_ENVIRONMENTS, ServerState
from .models import (
    ActiveCircuitModel,
    AuditModel,
    DeployRequest,
    Environment,
    GateModel,
    GateRunRequestModel,
    PromoteRequest,
    RollbackRequest,
    WebhookUrls,
)

router = APIRouter(prefix="/v1", tags=["deploys"])
GateId = Annotated[int, Path(ge=1, le=2**63 - 1, description="a gate run's id")]  # a database integer


def _active(state: ServerState, tenant_id: str, env: str) -> list[ActiveCircuitModel]:
    return [
        ActiveCircuitModel(name=c.name, version=c.version, sha256=c.sha256)
        for c in state.platform.deployments.active_circuits(tenant_id, env)
    ]


@router.get("/environments/{env}/circuits", response_model=list[ActiveCircuitModel], summary="Active circuits")
def active_circuits(
    env: Environment, caller: Caller = Depends(require("read")), state: ServerState = Depends(state_of)
) -> list[ActiveCircuitModel]:
    return _active(state, caller.tenant_id, env)


@router.post(
    "/environments/{env}/deployments",
    response_model=list[ActiveCircuitModel] | GateRunRequestModel,
    responses={202: {"model": GateRunRequestModel, "description": "staging, production: the deploy gate runs"}},
    summary="Deploy a version (staging, production: 202, after the deploy gate in a job)",
)
def deploy(
    env: Environment,
    body: DeployRequest,
    response: Response,
    caller: Caller = Depends(require("deploy")),
    state: ServerState = Depends(state_of),
) -> list[ActiveCircuitModel] | GateRunRequestModel:
    if env in GATED_ENVIRONMENTS:  # the tests run in a job (server/deploy_gate_jobs.py), not in this request
        response.status_code = 202
        return _gate_request(state.deploy_gate.request(caller.tenant_id, env, body.circuit, body.version, caller.actor))
    state.deploy(caller.tenant_id, env, body.circuit, body.version, caller.actor)
    return _active(state, caller.tenant_id, env)


@router.get(
    "/gate-runs/{gate_id}", response_model=GateRunRequestModel, summary="A deploy's gate run: pending or its verdict"
)
def gate_run(
    gate_id: GateId, caller: Caller = Depends(require("read")), state: ServerState = Depends(state_of)
) -> GateRunRequestModel:
    found = state.deploy_gate.get(caller.tenant_id, gate_id)
    if found is None:
        raise Problem(404, "Not found", f"no gate run {gate_id}")
    return _gate_request(found)


def _gate_request(request: GateRequest) -> GateRunRequestModel:
    return GateRunRequestModel(
        gate_run=request.id,
        kind=request.kind,
        state=request.state,
        env=request.env,
        from_env=request.from_env,
        circuits=request.circuits,
        circuit=request.circuit,
        version=request.version,
        actor=request.actor,
        requested_at=request.requested_at,
        detail=request.detail,
        coverage=request.coverage,
    )


@router.post("/environments/{env}/rollback", response_model=list[ActiveCircuitModel], summary="Roll back a circuit")
def rollback(
    env: Environment,
    body: RollbackRequest,
    caller: Caller = Depends(require("deploy")),
    state: ServerState = Depends(state_of),
) -> list[ActiveCircuitModel]:
    state.rollback(caller.tenant_id, env, body.circuit, caller.actor, body.to_version)
    return _active(state, caller.tenant_id, env)


@router.post(
    "/promotions",
    response_model=list[ActiveCircuitModel] | GateRunRequestModel,
    responses={202: {"model": GateRunRequestModel, "description": "to staging, production: the deploy gate runs"}},
    summary="Promote between environments (to staging, production: 202, after the deploy gate in a job)",
)
def promote(
    body: PromoteRequest,
    response: Response,
    caller: Caller = Depends(require("deploy")),
    state: ServerState = Depends(state_of),
) -> list[ActiveCircuitModel] | GateRunRequestModel:
    tenant_id, actor = caller.tenant_id, caller.actor
    if body.to_env in GATED_ENVIRONMENTS:  # pinned to what is active now; gated and promoted in a job
        response.status_code = 202
        return _gate_request(
            state.deploy_gate.request_promotion(tenant_id, body.from_env, body.to_env, body.circuit, actor)
        )
    state.promote(tenant_id, body.from_env, body.to_env, actor, body.circuit)
    return _active(state, tenant_id, body.to_env)


@router.get(
    "/audit",
    response_model=list[AuditModel],
    summary="Deploys, promotions, rollbacks and settings changes, newest first",
)
def audit(
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    caller: Caller = Depends(require("read")),
    state: ServerState = Depends(state_of),
) -> list[AuditModel]:
    gates = {
        g.audit_id: _gate(g)
        for g in state.platform.deployments.gate_runs(caller.tenant_id, 1000)
        if g.audit_id is not None
    }
    return [
        AuditModel(
            at=a.at,
            actor=a.actor,
            action=a.action,
            env=a.env,
            circuit=a.circuit,
            from_version=a.from_version,
            to_version=a.to_version,
            gate=gates.get(a.id),
            changed_keys=list(a.changed_keys),
        )
        for a in state.platform.audit.audit_log(caller.tenant_id, limit)
    ]


@router.get("/gate-runs", response_model=list[GateModel], summary="Every deploy-gate verdict, refusals included")
def gate_runs(
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    caller: Caller = Depends(require("read")),
    state: ServerState = Depends(state_of),
) -> list[GateModel]:
    return [_gate(g) for g in state.platform.deployments.gate_runs(caller.tenant_id, limit)]


def _gate(run: GateRun) -> GateModel:
    return GateModel(
        at=run.at,
        actor=run.actor,
        env=run.env,
        circuit=run.circuit,
        version=run.version,
        passed=run.passed,
        coverage=run.coverage,
        detail=run.detail,
    )


def _urls(state: ServerState, tenant_id: str, env: str, token: str) -> WebhookUrls:
    base = state.settings.public_url.rstrip("/")
    return WebhookUrls(env=env, urls={s: f"{base}/v1/hooks/{s}/{token}" for s in crm_registry.sources()})


@router.get(
    "/environments/{env}/webhooks",
    response_model=WebhookUrls,
    summary="This environment's webhook URLs, the first time",
    responses={409: {"description": "The URLs were shown when made (tokens are stored hashed); rotate for new ones"}},
)
def webhook_urls(
    env: Environment, caller: Caller = Depends(require("admin")), state: ServerState = Depends(state_of)
) -> WebhookUrls:
    token = state.platform.tenants.issue_webhook_token(caller.tenant_id, env)
    if token is None:
        raise Problem(
            409,
            "Webhook URLs are shown once",
            f"the {env} webhook token is stored hashed and was shown when it was made (production's first one "
            f"is in the server's admin-credentials.json); POST /v1/environments/{env}/webhooks/rotate makes "
            "new URLs, and the old ones stop working",
        )
    return _urls(state, caller.tenant_id, env, token)


@router.post(
    "/environments/{env}/webhooks/rotate", response_model=WebhookUrls, summary="New webhook URLs (shown this once)"
)
def rotate_webhook_token(
    env: Environment, caller: Caller = Depends(require("admin")), state: ServerState = Depends(state_of)
) -> WebhookUrls:
    return _urls(state, caller.tenant_id, env, state.platform.tenants.rotate_webhook_token(caller.tenant_id, env))
