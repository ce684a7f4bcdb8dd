"""Property-based fuzzing of the whole API from its OpenAPI document: no input may cause a 500.

schemathesis generates requests for every operation (valid and invalid bodies, paths,
queries) and sends them, authenticated as a tenant admin, to the app in-process. The suite sends
30 examples per operation (about 45 operations, some 30 s);
``CIRCUIT_API_FUZZ_EXAMPLES=N`` runs longer.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from circuit_host.server import ServerSettings, create_app
from circuit_host.server.state import ServerState

EXAMPLES = int(os.environ.get("CIRCUIT_API_FUZZ_EXAMPLES", "30"))


@schemathesis.serializer("application/zip")
def zip_bytes(ctx: object, value: object) -> bytes:
    """Bundle uploads are raw bytes: send whatever was generated as bytes."""
    return value if isinstance(value, bytes) else str(value).encode()


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    data = tmp_path_factory.mktemp("fuzz")
    server_settings = ServerSettings(data_dir=Path(data))
    state = ServerState(server_settings)
    tenant = state.platform.tenants.create_tenant("fuzz")
    _, key = state.platform.tenants.create_api_key(tenant.id, ["admin"], "fuzzer")
    state.platform.tenants.update_settings(tenant.id, {"rate_limit_per_minute": 10_000_000})
    yield create_app(server_settings, state), key
    state.close()


@pytest.fixture(scope="module")
def api_schema(fuzzed_app: tuple[object, str]) -> schemathesis.BaseSchema:
    app, _ = fuzzed_app
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_no_input_causes_a_server_error(api_schema: schemathesis.BaseSchema, fuzzed_app: tuple[object, str]) -> None:
    _, key = fuzzed_app
    operations = [result.ok() for result in api_schema.get_all_operations()]
    # The live tail never ends by itself (a test client would wait for its end): tests/server/test_dashboard_api.py.
    operations = [op for op in operations if op.path != "/v1/executions/stream"]
    assert len(operations) >= 15  # every route is in the document
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_server_error(case: schemathesis.Case) -> None:
            response = case.call(headers={"authorization": f"Bearer {key}"})
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:500]}"
            )

        no_server_error()
