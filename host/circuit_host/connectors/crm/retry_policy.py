"""How the outbox retries a CRM write, the same for every CRM."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RetryPolicy(BaseModel):
    """How the outbox dispatcher retries a failed send: exponential backoff with full jitter."""

    model_config = ConfigDict(frozen=True)

    max_attempts: int = Field(8, ge=1)
    base_delay_s: float = Field(2.0, ge=0)
    max_delay_s: float = Field(600.0, ge=0)
    jitter: float = Field(0.5, ge=0, le=1)
    """Fraction of each delay that is randomised: 0 gives exact doubling, 1 gives full jitter."""
    max_retry_after_s: float = Field(3600.0, ge=0)
    """A CRM's ``Retry-After`` is honoured up to this cap."""
    lease_s: float = Field(300.0, gt=0)
    """How long a claimed entry stays claimed; a dispatcher that died mid-send is retried after it."""
