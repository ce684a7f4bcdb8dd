"""Several server processes on one PostgreSQL database: what one deploys, the others run at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from circuit_host.platform import MasterKey
from circuit_host.server import ServerSettings
from circuit_host.server.state import ServerState
from tests.server.conftest import LiveServer, executions_of, serve
from tests.server.test_end_to_end import configure, deploy, ghl_contact, post_ghl


@pytest.fixture
def two_servers(tmp_path: Path, postgres_database: str) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two servers of one fleet: one database, one master key (each keeps its own data dir)."""
    key = SecretStr(MasterKey.generate().encoded())
    states = [
        ServerState(ServerSettings(data_dir=tmp_path / name, db_url=postgres_database, master_key=key))
        for name in ("a", "b")
    ]
    first, second = serve(states[0], states[0].settings), serve(states[1], states[1].settings)
    try:
        yield next(first), next(second)
    finally:
        for generator in (first, second):
            generator.close()
        for state in states:
            state.close()


def test_a_rollback_on_one_server_takes_effect_on_the_other(
    two_servers: tuple[LiveServer, LiveServer], vlpr_bundles: dict[str, Path]
) -> None:
    a, b = two_servers
    tenant = a.tenant("shared")
    configure(a, tenant)
    with tenant.client(a) as on_a, tenant.client(b) as on_b:
        deploy(on_a, vlpr_bundles["1.0.0"])
        deploy(on_a, vlpr_bundles["1.1.0"])
        assert [c["version"] for c in on_b.get("/v1/environments/production/circuits").json()] == ["1.1.0"]
        on_b.post("/v1/environments/production/rollback", json={"circuit": "virtual_lpr"})
        [execution] = executions_of(on_a, post_ghl(on_a, tenant, ghl_contact()))  # applied by either's worker
        assert execution["version"] == "virtual_lpr@1.0.0"  # the fleet already runs what b rolled back to
        rows = on_b.get("/v1/query", params={"soql": "SELECT VLPR_Grade__c FROM Contact"}).json()["records"]
        assert [r["VLPR_Grade__c"] for r in rows] == ["A"]  # one database: b sees what a committed
        assert httpx.get(f"{b.url}/healthz", trust_env=False).status_code == 200
