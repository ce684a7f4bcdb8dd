"""The ``jobs`` migrations create exactly the tables ``job_tables.py`` defines, on both databases."""

from __future__ import annotations

import functools

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from circuit_host.jobs.job_tables import build_job_tables
from circuit_host.migrations import current_revisions, job_queue, upgrade
from circuit_host.storage_engine import make_engine


def _ours(tables: set[str], name: str | None, kind: str, _parent: object) -> bool:
    return kind != "table" or name in tables


@pytest.mark.parametrize("database_url", ["embedded", "fleet"], indirect=True)
def test_the_migrated_tables_match_the_code(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine, job_queue("cs_"))
        upgrade(engine, job_queue("cs_"))  # a second start finds nothing to do
        assert current_revisions(engine, job_queue("cs_")) == {"0001"}
        metadata = build_job_tables("cs_").metadata
        with engine.connect() as conn:
            include = functools.partial(_ours, set(metadata.tables))
            context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()
