"""Webhook intake: authenticate, normalise, then store in the inbox and answer 202.

The changes are applied by jobs (``server/webhook_inbox.py``); a delivery stored before is
answered ``200 {"duplicate": true}`` and changes nothing.

Every source is a ``CrmPlugin`` looked up by the URL's ``{source}``: its ``verify`` and
``normalize`` run with the tenant's settings for it; nothing here names a source.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from ...connectors.crm import crm_registry
from ...connectors.crm.crm_registry import CrmPlugin
from ...platform import TenantSettings
from ...webhooks import DEFAULT_LIMITS, WebhookRejected, read_json_body
from ..auth import (
    Caller,
    count_failure,
    enforce_tenant_limits,
    refuse_if_guessing,
    require,
    state_of,
    tenant_settings,
)
from ..crm_records import crm_change
from ..problems import Problem
from ..state import ServerState
from .models import Environment, HookAccepted, HookAnswer, HookDuplicate

router = APIRouter(prefix="/v1/hooks", tags=["webhooks"])
log = structlog.get_logger("circuit.webhooks")


def _refused(state: ServerState, source: str, reason: str, tenant_id: str | None = None) -> None:
    """Count and log a refused delivery: ``source`` a registered source or ``unknown``, ``reason`` a
    ``WebhookRejected`` reason or ``unknown_source``, ``unknown_token``, ``overloaded``."""
    state.telemetry.count_webhook(source, "refused", reason)
    log.warning("webhook refused", source=source, reason=reason, tenant=tenant_id)


async def _intake(
    request: Request, state: ServerState, tenant_id: str, env: str, source: str, settings: TenantSettings
) -> HookAnswer:
    plugin = crm_registry.find(source)
    if plugin is None:
        _refused(state, "unknown", "unknown_source", tenant_id)
        raise Problem(404, "Unknown webhook source", f"sources are {', '.join(crm_registry.sources())}")
    body = await request.body()
    # Verification and the inbox's one transaction are blocking work: keep them off the event loop.
    return await run_in_threadpool(_process, state, tenant_id, env, plugin, body, request.headers, settings)


def _process(
    state: ServerState,
    tenant_id: str,
    env: str,
    plugin: CrmPlugin[Any],
    body: bytes,
    headers: Headers,
    settings: TenantSettings,
) -> HookAnswer:
    """Verify, normalise, store in the inbox (with the jobs that apply it): nothing else runs here.
    ``settings``: the tenant's, as the request read them (``auth.tenant_settings``)."""
    configuration = settings.section(plugin.configuration)
    source = plugin.source
    try:
        plugin.verify(body, headers, configuration, datetime.now(UTC))
        data = read_json_body(body, headers.get("content-type"), DEFAULT_LIMITS)
        changes = plugin.normalize(data, configuration, DEFAULT_LIMITS)
    except WebhookRejected as exc:
        _refused(state, source, exc.reason, tenant_id)
        raise Problem(exc.status, exc.reason.replace("_", " ").capitalize(), exc.message) from None
    crm = state.crm_outbox.selection(settings, env)
    if crm is not None:
        for change in changes:
            crm_change(crm, change)  # another CRM's change cannot apply where a CRM holds the records: 422 now
    inbox_ids = state.inbox.accept(tenant_id, env, source, changes, body, settings.coalesce_window_ms)
    if inbox_ids is None:
        state.telemetry.count_webhook(source, "duplicate")
        log.info("webhook duplicate", source=source, tenant=tenant_id)
        return HookDuplicate()
    state.telemetry.count_webhook(source, "accepted")
    return HookAccepted(accepted=len(inbox_ids), inbox_ids=inbox_ids)


@router.post(
    "/{source}/{token}",
    response_model=HookAnswer,
    status_code=202,
    responses={200: {"model": HookDuplicate, "description": "a repeated delivery: stored before, nothing done"}},
    summary="Receive a webhook on an environment's URL",
)
async def hook_by_token(
    source: str, token: str, request: Request, response: Response, state: ServerState = Depends(state_of)
) -> HookAnswer:
    refuse_if_guessing(request)
    resolved = state.platform.tenants.resolve_webhook_token(token)
    if resolved is None:
        count_failure(request)
        _refused(state, source if crm_registry.find(source) else "unknown", "unknown_token")
        raise Problem(404, "Unknown webhook URL", "the token is unknown or was rotated")
    tenant_id, env = resolved
    settings = await enforce_tenant_limits(request, state, tenant_id)
    return _answered(await _intake(request, state, tenant_id, env, source, settings), response)


@router.post(
    "/{source}",
    response_model=HookAnswer,
    status_code=202,
    responses={200: {"model": HookDuplicate, "description": "a repeated delivery: stored before, nothing done"}},
    summary="Receive a webhook with an API key (webhook scope)",
)
async def hook_by_key(
    source: str,
    request: Request,
    response: Response,
    env: Environment = "production",
    caller: Caller = Depends(require("webhook")),
    state: ServerState = Depends(state_of),
) -> HookAnswer:
    settings = await tenant_settings(state, caller.tenant_id)  # as ``require`` just read them: cached
    return _answered(await _intake(request, state, caller.tenant_id, env, source, settings), response)


def _answered(answer: HookAnswer, response: Response) -> HookAnswer:
    """202 when stored; 200 for a duplicate, so the sender stops retrying (a 409 would look like an error)."""
    if isinstance(answer, HookDuplicate):
        response.status_code = 200
    return answer
