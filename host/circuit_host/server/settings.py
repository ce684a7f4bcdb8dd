"""Server configuration, built once by ``circuit serve`` (or a test) and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict


class ServerSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    data_dir: Path
    db_url: str | None = None  # None: SQLite files in data_dir
    cache_dir: Path | None = None  # compiled modules; default data_dir/modules
    max_request_bytes: int = 1024 * 1024
    public_url: str = "http://127.0.0.1:8080"

    @property
    def platform_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'platform.sqlite3'}"

    @property
    def records_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'records.sqlite3'}"

    @property
    def module_cache(self) -> Path:
        return self.cache_dir or self.data_dir / "modules"
