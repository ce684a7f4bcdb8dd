"""Authentication, scopes and rate limits: every tenant-scoped route goes through ``require``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

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


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.circuit
    return state


def limiter_of(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


def enforce_rate_limit(state: ServerState, limiter: RateLimiter, tenant_id: str) -> None:
    per_minute = state.platform.tenants.get_settings(tenant_id).rate_limit_per_minute
    wait = limiter.acquire(tenant_id, per_minute)
    if wait > 0:
        raise Problem(
            429, "Too many requests", f"the limit is {per_minute} requests per minute", retry_after_header(wait)
        )


def require(scope: str) -> Callable[..., Caller]:
    """A dependency: a valid API key of the tenant with ``scope`` (``admin`` implies every scope)."""

    def dependency(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Caller:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Problem(
                401, "Unauthorized", "send an API key as `Authorization: Bearer KEY`", {"WWW-Authenticate": "Bearer"}
            )
        state = state_of(request)
        key = state.platform.tenants.authenticate(credentials.credentials)
        if key is None:
            raise Problem(401, "Unauthorized", "unknown or revoked API key", {"WWW-Authenticate": "Bearer"})
        scopes = frozenset(key.scopes)
        if not key.allows(scope):
            raise Problem(403, "Forbidden", f"this key lacks the {scope!r} scope")
        enforce_rate_limit(state, limiter_of(request), key.tenant_id)
        return Caller(key.tenant_id, key.id, scopes)

    return dependency
