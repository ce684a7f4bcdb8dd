"""Adding a CRM is one plugin and one registry entry: a toy CRM registered here, and nowhere in the host,
has its webhooks verified, normalised and applied through the server's hooks route."""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from circuit_host.connectors.crm.crm_registry import CrmPlugin, ExternalId, registered
from circuit_host.webhooks import BodyLimits, Change, WebhookRejected
from tests.server.conftest import LiveServer, applied, executions_of
from tests.server.test_end_to_end import deploy

TOKEN = "toy-shared-token-0123456789"


class ToySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    toy_token: str | None = None


def verify_toy(body: bytes, headers: Mapping[str, str], settings: ToySettings, now: datetime) -> None:
    sent = headers.get("x-toy-token", "")
    if settings.toy_token is None or not hmac.compare_digest(sent, settings.toy_token):
        raise WebhookRejected(401, "bad_signature", "x-toy-token does not match")


def normalize_toy(data: Any, settings: ToySettings, limits: BodyLimits) -> list[Change]:
    contact = data["contact"]
    return [Change(data["event"], None, "Contact", data["action"], [contact], source="toy")]


TOY = CrmPlugin(
    source="toy",
    title="Toy CRM",
    configuration=ToySettings,
    verify=verify_toy,
    normalize=normalize_toy,
    external_id=ExternalId("Toy_Id__c", carried_as="Id"),
)


def toy_event(event: str, action: str, **contact: Any) -> bytes:
    return json.dumps({"event": event, "action": action, "contact": {"Id": "toy-1", **contact}}).encode()


def test_a_crm_registered_outside_the_host_is_verified_normalised_and_applied(
    live: LiveServer, vlpr_bundles: dict[str, Path]
) -> None:
    with registered(TOY):
        tenant = live.tenant("acme")
        live.state.platform.tenants.update_settings(tenant.id, {"toy_token": TOKEN})  # its settings are tenant settings
        with tenant.client(live) as client:
            deploy(client, vlpr_bundles["1.0.0"])
            signed = {"content-type": "application/json", "x-toy-token": TOKEN}
            created = toy_event("e1", "insert", LastName="Toy", Company_Size__c=450, Called_Business__c=True)

            forged = client.post("/v1/hooks/toy", content=created, headers={**signed, "x-toy-token": "nope"})
            assert forged.status_code == 401, forged.text
            answer = client.post("/v1/hooks/toy", content=created, headers=signed)
            assert executions_of(client, answer)[0]["status"] == "ok"
            replay = client.post("/v1/hooks/toy", content=created, headers=signed)
            assert replay.json() == {"duplicate": True}

            updated = client.post("/v1/hooks/toy", content=toy_event("e2", "update", Title="CEO"), headers=signed)
            assert executions_of(client, updated)[0]["status"] == "ok"
            soql = "SELECT LastName, Title, VLPR_Grade__c, Toy_Id__c FROM Contact"
            [contact] = client.get("/v1/query", params={"soql": soql}).json()["records"]
            assert (contact["Toy_Id__c"], contact["LastName"], contact["Title"]) == ("toy-1", "Toy", "CEO")
            assert contact["VLPR_Grade__c"] is not None  # the circuit's trigger ran on it

            urls = client.get("/v1/environments/production/webhooks").json()["urls"]
            assert list(urls) == ["ghl", "salesforce-cdc", "generic", "toy"]
            by_token = client.post(
                urlsplit(urls["toy"]).path, content=toy_event("e3", "update", Title="CTO"), headers=signed
            )
            assert by_token.status_code == 202, by_token.text
            applied(client, by_token)

    with tenant.client(live) as client:
        gone = client.post("/v1/hooks/toy", content=created, headers=signed)
    assert gone.status_code == 404 and "toy" not in gone.json()["detail"]
