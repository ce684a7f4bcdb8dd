"""Fixtures for the CRM connectors: fake CRMs on loopback and outboxes on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from circuit_host.connectors.crm import (
    GoHighLevelConnector,
    GoHighLevelSettings,
    Outbox,
    OutboxDispatcher,
    RetryPolicy,
    SalesforceConnector,
    SalesforceSettings,
)

from .fakes import FakeGoHighLevel, FakeSalesforce

POSTGRES_URL = os.environ.get("CIRCUIT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FAST = RetryPolicy(max_attempts=3, base_delay_s=0.0, max_delay_s=0.0, jitter=0.0, lease_s=60)


def _postgres_reachable() -> str | None:
    try:
        engine = create_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(params=["sqlite", "postgres"])
def outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outbox]:
    if request.param == "sqlite":
        box = Outbox(tmp_path / "outbox.sqlite3")
    else:
        problem = _postgres_reachable()
        if problem is not None:
            if os.environ.get("CIRCUIT_REQUIRE_POSTGRES") == "1":
                pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required but unreachable: {problem}")
            pytest.skip(f"PostgreSQL at {POSTGRES_URL} unreachable: {problem}")
        box = Outbox(POSTGRES_URL, table_prefix=f"crm_t{uuid.uuid4().hex[:10]}_")
    yield box
    if request.param == "postgres":
        box.drop()
    box.close()


@pytest.fixture
def sqlite_outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.sqlite3")
    yield box
    box.close()


@pytest.fixture
def fake_sf() -> Iterator[FakeSalesforce]:
    server = FakeSalesforce()
    yield server
    server.close()


@pytest.fixture
def fake_ghl() -> Iterator[FakeGoHighLevel]:
    server = FakeGoHighLevel()
    yield server
    server.close()


def sf_settings(fake: FakeSalesforce, **overrides: object) -> SalesforceSettings:
    values: dict[str, object] = {"instance_url": fake.url, "access_token": fake.token, "api_version": fake.VERSION}
    values.update(overrides)
    return SalesforceSettings.model_validate(values)


@pytest.fixture
def salesforce(fake_sf: FakeSalesforce, sqlite_outbox: Outbox) -> Iterator[SalesforceConnector]:
    connector = SalesforceConnector(sf_settings(fake_sf), sqlite_outbox, tenant="acme")
    yield connector
    connector.close()


@pytest.fixture
def ghl(fake_ghl: FakeGoHighLevel, sqlite_outbox: Outbox) -> Iterator[GoHighLevelConnector]:
    settings = GoHighLevelSettings(
        base_url=fake_ghl.url,
        location_id=fake_ghl.location_id,
        api_key=fake_ghl.api_key,
    )
    connector = GoHighLevelConnector(settings, sqlite_outbox, tenant="beta")
    yield connector
    connector.close()


def dispatcher(outbox: Outbox, tenant: str, sender: object, **kwargs: object) -> OutboxDispatcher:
    policy = kwargs.pop("policy", FAST)
    return OutboxDispatcher(outbox, {tenant: sender}, policy, **kwargs)
