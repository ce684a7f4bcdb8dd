"""Request and response schemas of the API: pydantic models, so the OpenAPI document is complete."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Environment = Literal["dev", "staging", "production"]
Scope = Literal["admin", "deploy", "webhook", "read"]


class ExecutionSummary(BaseModel):
    id: str
    status: str
    error: dict[str, str] | None = None
    duration_ms: float


class OutboxEntryView(BaseModel):
    """One CRM write waiting in, or gone through, the outbox (values are not shown, only counts)."""

    id: int
    env: str
    crm: str
    operation: str
    object: str
    rows: int
    done: int = Field(description="rows the CRM acknowledged")
    state: Literal["pending", "sending", "sent", "dead"]
    attempts: int
    next_attempt_at: datetime | None = None
    last_error: str | None = Field(None, description="the CRM's answer to the last failed attempt")
    execution_id: str | None = Field(None, description="the execution that queued it")
    created_at: datetime | None = None
    sent_at: datetime | None = None


class TimelineStepView(BaseModel):
    kind: str = Field(description="query, dml, callout or trigger")
    name: str = Field(description="the SOQL text, `INSERT Contact`, the callout's method and URL, or the trigger")
    start_ms: float = Field(description="since the execution started")
    duration_ms: float
    depth: int = Field(description="how many steps enclose it: a trigger is one deeper than the DML that fired it")
    outcome: str
    rows: int | None = None


class ExecutionDetail(BaseModel):
    id: str
    env: str
    circuit: str
    version: str
    trigger: str
    status: str
    error: str | None = None
    usage: dict[str, Any]
    duration_ms: float
    started_at: datetime
    trace_id: str | None = Field(None, description="the execution's OpenTelemetry trace id, when it had one")
    debug_log: str | None = None
    timeline: list[TimelineStepView] | None = Field(
        None, description="in an execution's detail: its host calls and trigger runs, timed (at most 500)"
    )
    crm_writes: list[OutboxEntryView] | None = Field(
        None, description="in an execution's detail: what became of its writes to the CRM (dead: dead-lettered)"
    )


class ExecutionPage(BaseModel):
    executions: list[ExecutionDetail]
    next_before: str | None = Field(None, description="pass as `before` to get the next (older) page")


class HookAccepted(BaseModel):
    accepted: int = Field(description="changes stored in the inbox; workers apply them (GET /v1/inbox/{id})")
    inbox_ids: list[int]


class HookDuplicate(BaseModel):
    duplicate: Literal[True] = True


HookAnswer = HookAccepted | HookDuplicate


class RecordWrite(BaseModel):
    op: Literal["insert", "update", "upsert", "delete", "undelete"] = "insert"
    records: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)
    external_id: str = Field("Id", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=80)


class WriteResult(BaseModel):
    execution: ExecutionSummary
    ids: list[str] = []
    created: list[bool] = []


class QueryResultModel(BaseModel):
    records: list[dict[str, Any]]
    total_size: int


class BundleModel(BaseModel):
    sha256: str
    name: str
    version: str
    uploaded_at: datetime


class DeployRequest(BaseModel):
    circuit: str = Field(min_length=1, max_length=63)
    version: str = Field(min_length=1, max_length=64)


class RollbackRequest(BaseModel):
    circuit: str = Field(min_length=1, max_length=63)
    to_version: str | None = None


class PromoteRequest(BaseModel):
    from_env: Environment = Field(alias="from")
    to_env: Environment = Field(alias="to")
    circuit: str | None = None

    model_config = {"populate_by_name": True}


class ActiveCircuitModel(BaseModel):
    name: str
    version: str
    sha256: str


class GateModel(BaseModel):
    at: datetime
    actor: str
    env: str
    circuit: str
    version: str
    passed: bool
    coverage: float | None = Field(description="line coverage of the circuit's own code, in percent")
    detail: str


class GateRunRequestModel(BaseModel):
    """A deploy or promotion into a gated environment: its gate runs in a job; poll
    ``GET /v1/gate-runs/{gate_run}``."""

    gate_run: int = Field(description="the gate run's id")
    kind: Literal["deploy", "promotion"] = "deploy"
    state: Literal["pending", "passed", "refused", "cancelled"] = Field(
        description="pending (waiting or running), passed (and deployed), refused (nothing changed), cancelled"
    )
    env: str
    from_env: str | None = Field(None, description="a promotion's source environment")
    circuits: dict[str, str] = Field(
        description="name -> version of what is gated (a promotion: what was active in from_env when asked)"
    )
    circuit: str | None = Field(description="the circuit, when one (a promotion of all circuits may carry several)")
    version: str | None
    actor: str
    requested_at: datetime
    detail: str | None = Field(description="the refusal, or the passing verdicts' summary")
    coverage: float | None = Field(
        None, description="once the tests ran: coverage of the circuit's code, percent (the lowest of several)"
    )


class AuditModel(BaseModel):
    at: datetime
    actor: str
    action: str
    env: str | None
    circuit: str
    from_version: str | None
    to_version: str | None
    gate: GateModel | None = Field(None, description="the deploy gate's verdict that let this deploy through")
    changed_keys: list[str] = Field(
        default_factory=list,
        description="for a settings change (action `settings`), the settings it changed, by name; never values",
    )


class WebhookUrls(BaseModel):
    env: Environment
    urls: dict[str, str]


class KeyRequest(BaseModel):
    scopes: list[Scope] = Field(min_length=1)
    label: str = Field("", max_length=200)


class KeyModel(BaseModel):
    id: str
    scopes: list[str]
    label: str
    created_at: datetime
    revoked: bool


class NewKey(KeyModel):
    key: str = Field(description="the API key itself; shown only in this response")
