"""Server configuration, built once by ``circuit serve`` (or a test) and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ..connectors.crm.retry_policy import RetryPolicy
from ..observability.observability_settings import ObservabilitySettings


class ServerSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    data_dir: Path
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)  # logs, metrics
    db_url: str | None = None  # None: SQLite files in data_dir
    cache_dir: Path | None = None  # compiled modules; default data_dir/modules
    max_request_bytes: int = 1024 * 1024
    query_timeout_ms: int = Field(5_000, ge=1, description="How long one GET /v1/query may run.")
    max_query_response_bytes: int = Field(16 * 1024 * 1024, ge=1, description="Largest GET /v1/query answer.")
    public_url: str = "http://127.0.0.1:8080"
    max_concurrent_executions: int = Field(
        24, ge=1, description="Executions running at once in this process (below the thread pool's 40)."
    )
    max_concurrent_executions_per_tenant: int = Field(8, ge=1, description="Of those, one tenant's share.")
    failed_auth_per_minute: int = Field(
        30, ge=1, description="Bad API keys or webhook tokens one client address may send per minute before 429."
    )
    master_key: SecretStr | None = Field(
        None, description="The key secrets at rest are encrypted with (CIRCUIT_MASTER_KEY); else the key file."
    )
    master_key_file: Path | None = Field(None, description="Where the master key is kept; default data_dir/master.key.")

    job_workers: int = Field(
        2, ge=0, description="Job worker threads in this server; 0 leaves the jobs to `circuit worker` processes."
    )
    outbox_retry: RetryPolicy = Field(
        default_factory=RetryPolicy, description="How CRM writes are retried, and when they are dead-lettered."
    )
    outbox_poll_s: float = Field(1.0, gt=0, description="How often the outbox dispatcher looks for due CRM writes.")

    @property
    def outbox_url(self) -> str:
        """Where CRM writes wait for the dispatcher (the shared database, when there is one)."""
        return self.db_url or f"sqlite:///{self.data_dir / 'outbox.sqlite3'}"

    @property
    def platform_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'platform.sqlite3'}"

    @property
    def records_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'records.sqlite3'}"

    @property
    def master_key_path(self) -> Path:
        return self.master_key_file or self.data_dir / "master.key"

    @property
    def module_cache(self) -> Path:
        return self.cache_dir or self.data_dir / "modules"
