"""Server configuration, built once by ``circuit serve`` (or a test) and passed down.

At the edge, ``ServerSettings.from_environment(os.environ, flags)`` takes every field from its
``CIRCUIT_*`` variable (``CIRCUIT_PORT``, ``CIRCUIT_DB_URL``; a nested one as JSON or field by field,
``CIRCUIT_OUTBOX_RETRY__MAX_ATTEMPTS``), command-line flags overriding them. Constructed anywhere
else (``ServerSettings(data_dir=...)``, in tests) it takes only what it is given: no module reads the
environment on its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from ..connectors.crm.retry_policy import RetryPolicy
from ..errors import Rejected
from ..observability.observability_settings import ObservabilitySettings
from ..platform.models import ENVIRONMENTS
from ..platform.tenants import TENANT_ID_PATTERN

ENV_PREFIX = "CIRCUIT_"
ENV_NESTED_DELIMITER = "__"


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True, extra="forbid", env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER
    )

    host: str = Field("127.0.0.1", description="The address `circuit serve` listens on.")
    port: int = Field(8080, ge=0, le=65535, description="The port `circuit serve` listens on.")
    public_url: str = Field(
        "",
        pattern=r"^(https?://[^/?#\s]+(/[^?#\s]*)?)?$",
        description="The URL clients reach this server at (TLS, proxies): webhook URLs are built on it. "
        "Default: http://HOST:PORT.",
    )
    data_dir: Path
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)  # logs, metrics
    db_url: str | None = None  # None: SQLite files in data_dir
    cache_dir: Path | None = None  # compiled modules; default data_dir/modules
    max_request_bytes: int = 1024 * 1024
    query_timeout_ms: int = Field(5_000, ge=1, description="How long one GET /v1/query may run.")
    max_query_response_bytes: int = Field(16 * 1024 * 1024, ge=1, description="Largest GET /v1/query answer.")
    max_concurrent_executions: int = Field(
        24, ge=1, description="Executions running at once in this process (below the thread pool's 40)."
    )
    max_concurrent_executions_per_tenant: int = Field(8, ge=1, description="Of those, one tenant's share.")
    admission_wait_ms: int = Field(
        2_000, ge=0, description="How long a write over those bounds waits for a slot before 429/503."
    )
    failed_auth_per_minute: int = Field(
        30, ge=1, description="Bad API keys or webhook tokens one client address may send per minute before 429."
    )
    master_key: SecretStr | None = Field(
        None, description="The key secrets at rest are encrypted with (CIRCUIT_MASTER_KEY); else the key file."
    )
    master_key_file: Path | None = Field(None, description="Where the master key is kept; default data_dir/master.key.")

    max_open_record_files: int = Field(
        128,
        ge=1,
        description="SQLite records files (tenant environments) whose connections stay open; older ones close.",
    )
    workers: int = Field(
        1, ge=1, le=64, description="Server processes accepting on the one socket (`circuit serve --workers`)."
    )
    job_lease_s: float = Field(
        30.0,
        ge=1,
        le=3600,
        description="How long a job whose worker stopped stays claimed before another worker takes it over.",
    )
    job_workers: int = Field(
        2, ge=0, description="Job worker threads in this server; 0 leaves the jobs to `circuit worker` processes."
    )
    outbox_retry: RetryPolicy = Field(
        default_factory=RetryPolicy, description="How CRM writes are retried, and when they are dead-lettered."
    )
    outbox_poll_s: float = Field(1.0, gt=0, description="How often the outbox dispatcher looks for due CRM writes.")
    inbox_max_attempts: int = Field(
        5, ge=1, le=100, description="Attempts at applying a stored webhook before it is dead-lettered."
    )
    inbox_backoff_s: float = Field(
        2.0, ge=0, description="Wait after a webhook's first failed attempt; doubled after each further one."
    )

    @model_validator(mode="after")
    def _public_url_default(self) -> ServerSettings:
        """``public_url`` defaults to where the server listens; kept without a trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        object.__setattr__(self, "public_url", (self.public_url or f"http://{host}:{self.port}").rstrip("/"))
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values given: the environment is read by ``from_environment``, at the edge."""
        return (init_settings,)

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str], flags: Mapping[str, Any] | None = None, **defaults: Any
    ) -> ServerSettings:
        """Settings from ``CIRCUIT_*`` variables in ``environ``, overridden by ``flags`` (None: not given),
        over ``defaults``. A bad value is a ``Rejected`` naming its variable (or its setting, for a flag)."""
        try:
            from_env = _Environment(cls, environ)()
        except SettingsError as exc:
            field = re.search(r'field "([^"]+)"', str(exc))
            prefix = _variable(field.group(1)) if field else ENV_PREFIX
            name = " or ".join(sorted(v for v in environ if v.upper().startswith(prefix))) or prefix
            raise Rejected(f"{name}: not valid JSON (a list or an object is written as JSON)") from None
        values = _merged(_merged(defaults, from_env), _given(flags or {}))
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = []
            for err in exc.errors()[:10]:
                path = [str(p) for p in err["loc"]]
                where = _variable(*path) if path and _came_from(from_env, path) else ".".join(path) or "settings"
                problems.append(f"{where}: {err['msg']}")
            raise Rejected("; ".join(problems)) from None

    @property
    def outbox_url(self) -> str:
        """Where CRM writes wait for the dispatcher (the shared database, when there is one)."""
        return self.db_url or f"sqlite:///{self.data_dir / 'outbox.sqlite3'}"

    @property
    def platform_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'platform.sqlite3'}"

    def records_file(self, tenant_id: str, env: str) -> Path | None:
        """A tenant environment's own SQLite file, ``data_dir/records/<tenant_id>/<env>.sqlite3``, on the
        embedded default (SQLite locks a file for writing: one per tenant environment keeps tenants apart);
        None with a shared database. The names come from the validated ids, nothing else."""
        if not TENANT_ID_PATTERN.fullmatch(tenant_id) or env not in ENVIRONMENTS:
            raise ValueError(f"not a tenant environment: {tenant_id!r}, {env!r}")
        return None if self.db_url else self.data_dir / "records" / tenant_id / f"{env}.sqlite3"

    def records_url_for(self, tenant_id: str, env: str) -> str:
        """Where a tenant environment's records are: its own file, or the shared database (its tables there)."""
        path = self.records_file(tenant_id, env)
        return f"sqlite:///{path}" if path is not None else str(self.db_url)

    @property
    def master_key_path(self) -> Path:
        return self.master_key_file or self.data_dir / "master.key"

    @property
    def module_cache(self) -> Path:
        return self.cache_dir or self.data_dir / "modules"


class _Environment(EnvSettingsSource):
    """pydantic-settings' reading of ``CIRCUIT_*`` variables, from a mapping the edge passes in."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self._environ.items()}


def _variable(*path: str) -> str:
    """The environment variable of a setting: ``CIRCUIT_OUTBOX_RETRY__MAX_ATTEMPTS``."""
    return ENV_PREFIX + ENV_NESTED_DELIMITER.join(p.upper() for p in path)


def _given(flags: Mapping[str, Any]) -> dict[str, Any]:
    """``flags`` without the ones not given (None), at every level."""
    given: dict[str, Any] = {}
    for key, value in flags.items():
        if isinstance(value, Mapping):
            value = _given(value)
            if not value:
                continue
        if value is not None:
            given[key] = value
    return given


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _came_from(values: Mapping[str, Any], path: list[str]) -> bool:
    """Whether ``values`` (what the environment gave) holds the setting at ``path``."""
    node: Any = values
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True
