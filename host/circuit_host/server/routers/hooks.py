"""Webhook intake: authenticate, normalise, de-duplicate, then run the changes through the triggers.

Every source is a ``CrmPlugin`` looked up by the URL's ``{source}``: its ``verify`` and
``normalize`` run with the tenant's settings for it; nothing here names a source.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from ...connectors.crm import crm_registry
from ...connectors.crm.crm_registry import CrmPlugin
from ...webhooks import DEFAULT_LIMITS, WebhookRejected, read_json_body
from ..auth import (
    Caller,
    count_failure,
    enforce_tenant_limits,
    refuse_if_guessing,
    require,
    state_of,
)
from ..problems import Problem
from ..state import ServerState
from .models import Environment, ExecutionSummary, HookResult

router = APIRouter(prefix="/v1/hooks", tags=["webhooks"])
log = structlog.get_logger("circuit.webhooks")


def _refused(state: ServerState, source: str, reason: str, tenant_id: str | None = None) -> None:
    """Count and log a refused delivery: ``source`` a registered source or ``unknown``, ``reason`` a
    ``WebhookRejected`` reason or ``unknown_source``, ``unknown_token``, ``overloaded``."""
    state.telemetry.count_webhook(source, "refused", reason)
    log.warning("webhook refused", source=source, reason=reason, tenant=tenant_id)


def _duplicate(state: ServerState, source: str, tenant_id: str) -> Problem:
    state.telemetry.count_webhook(source, "duplicate")
    log.info("webhook replay refused", source=source, tenant=tenant_id)
    return Problem(409, "Replay", "this webhook was already received")


async def _intake(request: Request, state: ServerState, tenant_id: str, env: str, source: str) -> HookResult:
    plugin = crm_registry.find(source)
    if plugin is None:
        _refused(state, "unknown", "unknown_source", tenant_id)
        raise Problem(404, "Unknown webhook source", f"sources are {', '.join(crm_registry.sources())}")
    body = await request.body()
    # Verification, storage and the sandboxed executions are blocking work: keep them off the event loop.
    return await run_in_threadpool(_process, state, tenant_id, env, plugin, body, request.headers)


def _process(
    state: ServerState, tenant_id: str, env: str, plugin: CrmPlugin[Any], body: bytes, headers: Headers
) -> HookResult:
    settings = state.platform.tenants.get_settings(tenant_id)
    configuration = settings.section(plugin.configuration)
    source = plugin.source
    try:
        plugin.verify(body, headers, configuration, datetime.now(UTC))
        data = read_json_body(body, headers.get("content-type"), DEFAULT_LIMITS)
        changes = plugin.normalize(data, configuration, DEFAULT_LIMITS)
    except WebhookRejected as exc:
        _refused(state, source, exc.reason, tenant_id)
        raise Problem(exc.status, exc.reason.replace("_", " ").capitalize(), exc.message) from None
    # One delivery is claimed once, before any work: by the sender's id, or by the signed body's hash
    # when the source sends none (a verified body cannot be re-sent unchanged as a new delivery).
    body_id = "sha256:" + hashlib.sha256(body).hexdigest()
    changes = [c if c.webhook_id else replace(c, webhook_id=body_id) for c in changes]
    delivery_ids = [c.webhook_id for c in changes]
    if settings.coalesce_window_ms > 0:
        if not state.claim_deliveries(tenant_id, source, delivery_ids):
            raise _duplicate(state, source, tenant_id)
        coalescer = state.coalescer(tenant_id, settings.coalesce_window_ms)
        for change in changes:
            coalescer.add(tenant_id, env, change)
        state.telemetry.count_webhook(source, "accepted")
        return HookResult(executions=[], queued=sum(len(c.records) for c in changes))
    try:
        with state.admission.admitted(tenant_id):  # refused before claiming: the sender's retry will run
            if not state.claim_deliveries(tenant_id, source, delivery_ids):
                raise _duplicate(state, source, tenant_id)
            records = state.apply_webhook_changes(tenant_id, env, source, changes, delivery_ids)
    except Problem as exc:
        if exc.status in (429, 503):
            _refused(state, source, "overloaded", tenant_id)
        raise
    state.telemetry.count_webhook(source, "accepted")
    return HookResult(
        executions=[
            ExecutionSummary(id=r.id, status=r.status, error=r.error, duration_ms=r.duration_ms) for r in records
        ]
    )


@router.post("/{source}/{token}", response_model=HookResult, summary="Receive a webhook on an environment's URL")
async def hook_by_token(
    source: str, token: str, request: Request, response: Response, state: ServerState = Depends(state_of)
) -> HookResult:
    refuse_if_guessing(request)
    resolved = state.platform.tenants.resolve_webhook_token(token)
    if resolved is None:
        count_failure(request)
        _refused(state, source if crm_registry.find(source) else "unknown", "unknown_token")
        raise Problem(404, "Unknown webhook URL", "the token is unknown or was rotated")
    tenant_id, env = resolved
    enforce_tenant_limits(request, state, tenant_id)
    return _accepted(await _intake(request, state, tenant_id, env, source), response)


@router.post("/{source}", response_model=HookResult, summary="Receive a webhook with an API key (webhook scope)")
async def hook_by_key(
    source: str,
    request: Request,
    response: Response,
    env: Environment = "production",
    caller: Caller = Depends(require("webhook")),
    state: ServerState = Depends(state_of),
) -> HookResult:
    return _accepted(await _intake(request, state, caller.tenant_id, env, source), response)


def _accepted(result: HookResult, response: Response) -> HookResult:
    """202 when the changes wait in a coalescing window instead of having run."""
    if result.queued:
        response.status_code = 202
    return result
