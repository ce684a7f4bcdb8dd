"""Webhook intake: authenticate, normalise, de-duplicate, then run the changes through the triggers."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from ...platform import TenantSettings
from ...webhooks import SOURCES, GhlMapping, WebhookKeys, WebhookRejected, normalize, verify
from ..auth import Caller, enforce_rate_limit, limiter_of, require, state_of
from ..changes import as_dml
from ..problems import Problem
from ..state import ServerState
from .models import Environment, ExecutionSummary, HookResult

router = APIRouter(prefix="/v1/hooks", tags=["webhooks"])
REPLAY_TTL_S = 7 * 24 * 3600


async def _intake(request: Request, state: ServerState, tenant_id: str, env: str, source: str) -> HookResult:
    if source not in SOURCES:
        raise Problem(404, "Unknown webhook source", f"sources are {', '.join(SOURCES)}")
    body = await request.body()
    # Verification, storage and the sandboxed executions are blocking work: keep them off the event loop.
    return await run_in_threadpool(_process, state, tenant_id, env, source, body, request.headers)


def _process(state: ServerState, tenant_id: str, env: str, source: str, body: bytes, headers: Headers) -> HookResult:
    settings = state.platform.get_settings(tenant_id)
    try:
        verify(source, body, headers, webhook_keys(settings))
        mapping = GhlMapping(custom_fields=settings.ghl_custom_fields)
        changes = normalize(source, body, headers.get("content-type"), ghl_mapping=mapping)
    except WebhookRejected as exc:
        raise Problem(exc.status, exc.reason.replace("_", " ").capitalize(), exc.message) from None
    if any(c.webhook_id and state.platform.seen_webhook_id(tenant_id, source, c.webhook_id) for c in changes):
        raise Problem(409, "Replay", "this webhook was already received")
    summaries = []
    for change in changes:
        op, rows, external_id = as_dml(state.store(tenant_id, env), change)
        if rows:
            trigger = f"{source}:{change.object}.{change.action}"
            record = state.apply_change(tenant_id, env, op, change.object, rows, trigger, external_id)
            summaries.append(
                ExecutionSummary(id=record.id, status=record.status, error=record.error, duration_ms=record.duration_ms)
            )
            if record.status != "ok":
                continue  # not remembered: the sender's retry will be processed
        if change.webhook_id:
            state.platform.remember_webhook_id(tenant_id, source, change.webhook_id, REPLAY_TTL_S)
    return HookResult(executions=summaries)


def webhook_keys(settings: TenantSettings) -> WebhookKeys:
    """The tenant's configured verification keys (the generic HMAC secret also signs CDC relays)."""
    secret = settings.generic_hmac_secret.get_secret_value() if settings.generic_hmac_secret else None
    return WebhookKeys.from_config(
        ghl_public_keys=[settings.ghl_public_key] if settings.ghl_public_key else [],
        ghl_legacy_rsa_public_keys=[settings.ghl_legacy_rsa_public_key] if settings.ghl_legacy_rsa_public_key else [],
        allow_unsigned_ghl=settings.allow_unsigned_ghl,
        ghl_location_ids=settings.ghl_location_ids,
        generic_secrets=[secret] if secret else [],
        salesforce_cdc_secrets=[secret] if secret else [],
    )


@router.post("/{source}/{token}", response_model=HookResult, summary="Receive a webhook on an environment's URL")
async def hook_by_token(
    source: str, token: str, request: Request, state: ServerState = Depends(state_of)
) -> HookResult:
    resolved = state.platform.resolve_webhook_token(token)
    if resolved is None:
        raise Problem(404, "Unknown webhook URL", "the token is unknown or was rotated")
    tenant_id, env = resolved
    enforce_rate_limit(state, limiter_of(request), tenant_id)
    return await _intake(request, state, tenant_id, env, source)


@router.post("/{source}", response_model=HookResult, summary="Receive a webhook with an API key (webhook scope)")
async def hook_by_key(
    source: str,
    request: Request,
    env: Environment = "production",
    caller: Caller = Depends(require("webhook")),
    state: ServerState = Depends(state_of),
) -> HookResult:
    return await _intake(request, state, caller.tenant_id, env, source)
