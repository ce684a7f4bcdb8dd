"""Authentication, scopes and rate limits: every tenant-scoped route goes through ``require``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from ..platform import TenantSettings
from .problems import Problem
from .ratelimit import RateLimiter, retry_after_header
from .state import ServerState

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer cs_...`")
SCOPES = ("admin", "deploy", "webhook", "read")


@dataclass(frozen=True)
class Caller:
    tenant_id: str
    key_id: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.circuit
    return state


async def state_of(request: Request) -> ServerState:
    """The server state as a dependency: ``async`` so that FastAPI runs it on the event loop, not in
    a worker thread (a sync dependency costs a thread hand-off per request)."""
    return server_state(request)


def limiter_of(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


def _failures_key(request: Request) -> str:
    return f"auth-failures:{request.client.host if request.client else 'unknown'}"


def refuse_if_guessing(request: Request) -> None:
    """429 for a client address that sent too many bad keys or webhook tokens lately: guessing
    credentials costs the guesser time, not the server work."""
    per_minute = server_state(request).settings.failed_auth_per_minute
    wait = limiter_of(request).wait(_failures_key(request), per_minute)
    if wait > 0:
        raise Problem(
            429, "Too many failed attempts", "too many bad credentials from this address", retry_after_header(wait)
        )


def count_failure(request: Request) -> None:
    """Charge one bad credential to the client address."""
    limiter_of(request).acquire(_failures_key(request), server_state(request).settings.failed_auth_per_minute)


async def tenant_settings(state: ServerState, tenant_id: str) -> TenantSettings:
    """The tenant's settings as the request path reads them: from the credential cache, or on a miss
    from the database in the thread pool (``server/credential_cache.py``)."""
    cache, tenants = state.credentials, state.platform.tenants
    settings = cache.settings(tenant_id)
    if settings is None:
        changes = tenants.changes
        settings = await run_in_threadpool(tenants.get_settings, tenant_id)
        cache.remember_settings(tenant_id, settings, changes)
    return settings


async def enforce_tenant_limits(request: Request, state: ServerState, tenant_id: str) -> TenantSettings:
    """The tenant's request rate and its own request-size setting (below the server's cap, which the
    middleware enforces), from one read of its settings, which it returns for the request's own use."""
    settings = await tenant_settings(state, tenant_id)
    per_minute = settings.rate_limit_per_minute
    wait = limiter_of(request).acquire(tenant_id, per_minute)
    if wait > 0:
        raise Problem(
            429, "Too many requests", f"the limit is {per_minute} requests per minute", retry_after_header(wait)
        )
    declared = request.headers.get("content-length")
    limit = settings.max_request_bytes
    if declared is not None and declared.isdigit() and int(declared) > limit and request.url.path != "/v1/bundles":
        raise Problem(413, "Request too large", f"this tenant's requests are limited to {limit} bytes")
    return settings


def require(scope: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency: a valid API key of the tenant with ``scope`` (``admin`` implies every scope).

    It runs on the event loop: the key and the tenant's settings come from the credential cache
    (``server/credential_cache.py``), and only a miss reads the database, in the thread pool."""

    async def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> Caller:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Problem(
                401, "Unauthorized", "send an API key as `Authorization: Bearer KEY`", {"WWW-Authenticate": "Bearer"}
            )
        refuse_if_guessing(request)
        state = server_state(request)
        tenants, cache, plaintext = state.platform.tenants, state.credentials, credentials.credentials
        key = cache.key(plaintext)
        if key is None:
            changes = tenants.changes
            key = await run_in_threadpool(tenants.authenticate, plaintext)
            if key is None:
                count_failure(request)
                raise Problem(401, "Unauthorized", "unknown or revoked API key", {"WWW-Authenticate": "Bearer"})
            cache.remember_key(plaintext, key, changes)
        if not key.allows(scope):
            raise Problem(403, "Forbidden", f"this key lacks the {scope!r} scope")
        await enforce_tenant_limits(request, state, key.tenant_id)
        return Caller(key.tenant_id, key.id, frozenset(key.scopes))

    return dependency
