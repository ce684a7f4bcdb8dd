"""Several server processes on one PostgreSQL database: what one deploys, the others run at once."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.server.conftest import LiveServer, executions_of
from tests.server.test_end_to_end import configure, deploy, ghl_contact, post_ghl


def test_a_rollback_on_one_server_takes_effect_on_the_other(
    fleet: tuple[LiveServer, LiveServer], vlpr_bundles: dict[str, Path]
) -> None:
    a, b = fleet
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
