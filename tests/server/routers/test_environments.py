"""/v1/environments, /v1/promotions, /v1/audit, /v1/gate-runs: which version runs where, and how that changes.

dev takes any uploaded version; staging and production take only versions whose tests pass
with enough coverage (the deploy gate), by deploy or by promotion. Every change is in the
audit trail with the key that made it, and every gate verdict is kept.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import gate_verdict
from tests.server.routers.conftest import OTHER_SCOPE, Tenant, deploy, problem, query, upload
from tests.server.test_end_to_end import variant

LPR = "virtual_lpr"
ROUTES = [
    ("GET", "/v1/environments/dev/circuits", None, "read"),
    ("POST", "/v1/environments/dev/deployments", {"circuit": LPR, "version": "1.0.0"}, "deploy"),
    ("POST", "/v1/environments/dev/rollback", {"circuit": LPR}, "deploy"),
    ("POST", "/v1/promotions", {"from": "dev", "to": "staging"}, "deploy"),
    ("GET", "/v1/audit", None, "read"),
    ("GET", "/v1/gate-runs", None, "read"),
    ("GET", "/v1/gate-runs/1", None, "read"),
    ("GET", "/v1/environments/dev/webhooks", None, "admin"),
    ("POST", "/v1/environments/dev/webhooks/rotate", None, "admin"),
]


def versions(tenant: Tenant, env: str) -> list[str]:
    answer = tenant.admin.get(f"/v1/environments/{env}/circuits")
    assert answer.status_code == 200, answer.text
    return [c["version"] for c in answer.json()]


def rollback(tenant: Tenant, env: str, **body: str) -> httpx.Response:
    answer: httpx.Response = tenant.admin.post(f"/v1/environments/{env}/rollback", json={"circuit": LPR, **body})
    return answer


def admin_actor(tenant: Tenant) -> str:
    [key] = [k for k in tenant.admin.get("/v1/keys").json() if k["scopes"] == ["admin"]]
    return f"key:{key['id']}"


# --- deployments ---------------------------------------------------------------------------------


def test_a_deploy_activates_the_uploaded_bundle_in_that_environment_only(
    acme: Tenant, vlpr_bundles: dict[str, Path]
) -> None:
    assert versions(acme, "dev") == []
    sha = upload(acme.admin, vlpr_bundles["1.0.0"])["sha256"]
    deployed = acme.admin.post("/v1/environments/dev/deployments", json={"circuit": LPR, "version": "1.0.0"})
    assert deployed.status_code == 200, deployed.text
    assert deployed.json() == [{"name": LPR, "version": "1.0.0", "sha256": sha}]
    assert acme.admin.get("/v1/environments/dev/circuits").json() == deployed.json()
    assert versions(acme, "staging") == versions(acme, "production") == []


def test_deploying_another_version_replaces_the_active_one(acme: Tenant, vlpr_bundles: dict[str, Path]) -> None:
    deploy(acme.admin, vlpr_bundles["1.0.0"])
    assert [c["version"] for c in deploy(acme.admin, vlpr_bundles["1.1.0"])] == ["1.1.0"]
    assert versions(acme, "dev") == ["1.1.0"]


def test_deploying_the_active_version_again_changes_nothing(acme: Tenant, vlpr_bundles: dict[str, Path]) -> None:
    deploy(acme.admin, vlpr_bundles["1.0.0"])
    before = acme.admin.get("/v1/audit").json()
    assert [c["version"] for c in deploy(acme.admin, vlpr_bundles["1.0.0"])] == ["1.0.0"]
    assert acme.admin.get("/v1/audit").json() == before


def test_deploying_a_version_never_uploaded_is_404(acme: Tenant, vlpr_bundles: dict[str, Path]) -> None:
    upload(acme.admin, vlpr_bundles["1.0.0"])
    missing = acme.admin.post("/v1/environments/dev/deployments", json={"circuit": LPR, "version": "9.9.9"})
    assert "9.9.9" in problem(missing, 404)["detail"]
    assert versions(acme, "dev") == []


def test_another_tenants_bundle_cannot_be_deployed(acme: Tenant, globex: Tenant, vlpr_bundles: dict[str, Path]) -> None:
    deploy(acme.admin, vlpr_bundles["1.0.0"])
    problem(globex.admin.post("/v1/environments/dev/deployments", json={"circuit": LPR, "version": "1.0.0"}), 404)
    assert versions(globex, "dev") == []
    assert versions(acme, "dev") == ["1.0.0"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/environments/qa/deployments", {"circuit": LPR, "version": "1.0.0"}, "path.env"),
        ("/v1/environments/dev/deployments", {"version": "1.0.0"}, "body.circuit"),
        ("/v1/environments/dev/deployments", {"circuit": "", "version": "1.0.0"}, "body.circuit"),
        ("/v1/environments/dev/deployments", {"circuit": LPR, "version": "v" * 65}, "body.version"),
        ("/v1/environments/dev/rollback", {}, "body.circuit"),
        ("/v1/environments/prod/rollback", {"circuit": LPR}, "path.env"),
        ("/v1/promotions", {"from": "dev", "to": "qa"}, "body.to"),
        ("/v1/promotions", {"to": "staging"}, "body.from"),
    ],
)
def test_bad_requests_are_422_naming_the_field(acme: Tenant, path: str, body: dict[str, str], field: str) -> None:
    detail = problem(acme.admin.post(path, json=body), 422)["detail"]
    assert detail.startswith(f"{field}:") or f"; {field}:" in detail, detail


def test_an_unknown_environment_is_422_on_reads_too(acme: Tenant) -> None:
    assert "path.env" in problem(acme.admin.get("/v1/environments/qa/circuits"), 422)["detail"]
    assert "path.env" in problem(acme.admin.get("/v1/environments/qa/webhooks"), 422)["detail"]


# --- the deploy gate: staging and production ---------------------------------------------------------


def test_production_takes_a_tested_version_and_keeps_the_gates_verdict(
    acme: Tenant, vlpr_bundles: dict[str, Path]
) -> None:
    assert [c["version"] for c in deploy(acme.admin, vlpr_bundles["1.0.0"], env="production")] == ["1.0.0"]
    [run] = acme.admin.get("/v1/gate-runs").json()
    assert (run["env"], run["circuit"], run["version"], run["passed"]) == ("production", LPR, "1.0.0", True)
    assert run["coverage"] >= 75 and run["actor"] == admin_actor(acme)
    deployed = next(a for a in acme.admin.get("/v1/audit").json() if a["action"] == "deploy")
    assert deployed["gate"] == run


def test_staging_and_production_refuse_a_version_without_tests(
    acme: Tenant, vlpr_bundles: dict[str, Path], tmp_path: Path
) -> None:
    untested = variant(vlpr_bundles["1.0.0"], tmp_path / "untested.circuit", "5.0.0", members=("module.wasm",))
    upload(acme.admin, untested)
    body = {"circuit": LPR, "version": "5.0.0"}
    for env in ("staging", "production"):
        refused = gate_verdict(acme.admin, acme.admin.post(f"/v1/environments/{env}/deployments", json=body))
        assert refused["state"] == "refused" and "has no tests" in refused["detail"], refused
        assert versions(acme, env) == []
    assert acme.admin.post("/v1/environments/dev/deployments", json=body).status_code == 200  # dev is not gated
    runs = acme.admin.get("/v1/gate-runs").json()
    assert [(r["env"], r["passed"]) for r in runs] == [("production", False), ("staging", False)]


def test_the_gate_needs_the_tenants_coverage_threshold(acme: Tenant, vlpr_bundles: dict[str, Path]) -> None:
    acme.configure(coverage_threshold=100)
    upload(acme.admin, vlpr_bundles["1.0.0"])
    answer = acme.admin.post("/v1/environments/staging/deployments", json={"circuit": LPR, "version": "1.0.0"})
    assert answer.json()["state"] == "pending" and answer.json()["gate_run"] > 0  # 202: the gate runs in a job
    refused = gate_verdict(acme.admin, answer)
    assert refused["state"] == "refused" and "under the required 100%" in refused["detail"]
    [run] = acme.admin.get("/v1/gate-runs").json()
    assert run["passed"] is False and "under the required 100%" in run["detail"]
    assert versions(acme, "staging") == []


def test_a_gate_run_is_the_tenants_own(acme: Tenant, globex: Tenant, vlpr_bundles: dict[str, Path]) -> None:
    upload(acme.admin, vlpr_bundles["1.0.0"])
    answer = acme.admin.post("/v1/environments/staging/deployments", json={"circuit": LPR, "version": "1.0.0"})
    gate = gate_verdict(acme.admin, answer)
    assert (gate["state"], gate["env"], gate["circuit"], gate["version"]) == ("passed", "staging", LPR, "1.0.0")
    assert gate["detail"].endswith("%") and gate["coverage"] >= 75
    problem(globex.admin.get(f"/v1/gate-runs/{gate['gate_run']}"), 404)
    problem(acme.admin.get("/v1/gate-runs/999999"), 404)
    problem(acme.admin.get(f"/v1/gate-runs/{2**64}"), 422)
    missing = acme.admin.post("/v1/environments/production/deployments", json={"circuit": LPR, "version": "9.9.9"})
    problem(missing, 404)  # no bundle: refused at once, no gate run queued


# --- rollback ----------------------------------------------------------------------------------------


def test_rollback_returns_to_the_previous_version_and_new_executions_run_it(
    acme: Tenant, vlpr_bundles: dict[str, Path]
) -> None:
    deploy(acme.admin, vlpr_bundles["1.0.0"])
    deploy(acme.admin, vlpr_bundles["1.1.0"])
    rolled = rollback(acme, "dev")
    assert rolled.status_code == 200, rolled.text
    assert [c["version"] for c in rolled.json()] == ["1.0.0"] == versions(acme, "dev")
    written = acme.admin.post("/v1/records/Contact?env=dev", json={"records": [{"LastName": "After"}]})
    execution = acme.admin.get(f"/v1/executions/{written.json()['execution']['id']}").json()
    assert execution["version"] == f"{LPR}@1.0.0"


def test_rollback_with_no_earlier_version_is_a_conflict(acme: Tenant, vlpr_bundles: dict[str, Path]) -> None:
    deploy(acme.admin, vlpr_bundles["1.0.0"])
    assert "pass to_version" in problem(rollback(acme, "dev"), 409)["detail"]
    assert versions(acme, "dev") == ["1.0.0"]


def test_rollback_to_a_named_version(acme: Tenant, vlpr_bundles: dict[str, Path]) -> None:
    deploy(acme.admin, vlpr_bundles["1.0.0"])
    deploy(acme.admin, vlpr_bundles["1.1.0"])
    assert rollback(acme, "dev").status_code == 200
    forward = rollback(acme, "dev", to_version="1.1.0")
    assert forward.status_code == 200, forward.text
    assert versions(acme, "dev") == ["1.1.0"]


def test_rollback_to_the_active_version_is_a_conflict_and_to_an_unknown_one_404(
    acme: Tenant, vlpr_bundles: dict[str, Path]
) -> None:
    deploy(acme.admin, vlpr_bundles["1.0.0"])
    assert "already active" in problem(rollback(acme, "dev", to_version="1.0.0"), 409)["detail"]
    assert "7.7.7" in problem(rollback(acme, "dev", to_version="7.7.7"), 404)["detail"]
    assert versions(acme, "dev") == ["1.0.0"]


def test_rolling_back_a_circuit_that_is_not_active_is_404(
    acme: Tenant, globex: Tenant, vlpr_bundles: dict[str, Path]
) -> None:
    deploy(acme.admin, vlpr_bundles["1.0.0"])
    deploy(acme.admin, vlpr_bundles["1.1.0"])
    problem(rollback(acme, "staging"), 404)
    problem(rollback(globex, "dev"), 404)  # acme's circuit is not globex's
    assert versions(acme, "dev") == ["1.1.0"]


def test_rollback_cannot_bring_untested_code_into_production(
    acme: Tenant, vlpr_bundles: dict[str, Path], tmp_path: Path
) -> None:
    deploy(acme.admin, vlpr_bundles["1.0.0"], env="production")
    upload(acme.admin, variant(vlpr_bundles["1.0.0"], tmp_path / "untested.circuit", "5.0.0", members=("module.wasm",)))
    refused = rollback(acme, "production", to_version="5.0.0")
    assert refused.status_code in (409, 422), refused.text
    assert versions(acme, "production") == ["1.0.0"]


def test_rollback_cannot_activate_a_version_whose_credentials_are_not_configured(
    acme: Tenant, vlpr_bundles: dict[str, Path], tmp_path: Path
) -> None:
    deploy(acme.admin, vlpr_bundles["1.0.0"])
    credentials = '\n[credentials]\nnames = ["census"]\n'
    upload(acme.admin, variant(vlpr_bundles["1.0.0"], tmp_path / "census.circuit", "4.0.0", credentials))
    problem(acme.admin.post("/v1/environments/dev/deployments", json={"circuit": LPR, "version": "4.0.0"}), 422)
    refused = rollback(acme, "dev", to_version="4.0.0")
    assert refused.status_code == 422, refused.text
    assert versions(acme, "dev") == ["1.0.0"]


def test_rollback_to_a_version_brings_its_schema(acme: Tenant, vlpr_bundles: dict[str, Path], tmp_path: Path) -> None:
    deploy(acme.admin, vlpr_bundles["1.0.0"])
    field = '\n[[schema.fields]]\nobject = "Contact"\nname = "Extra__c"\ntype = "text"\nlength = 20\n'
    upload(acme.admin, variant(vlpr_bundles["1.0.0"], tmp_path / "extra.circuit", "6.0.0", field))
    assert rollback(acme, "dev", to_version="6.0.0").status_code == 200
    written = acme.admin.post("/v1/records/Contact?env=dev", json={"records": [{"LastName": "E", "Extra__c": "x"}]})
    assert written.json()["execution"]["status"] == "ok", written.json()


def test_a_deploy_past_the_tenants_schema_caps_is_422_and_changes_nothing(
    acme: Tenant, vlpr_bundles: dict[str, Path], tmp_path: Path
) -> None:
    acme.configure(max_custom_fields_per_object=3)  # Virtual LPR adds more to Contact
    upload(acme.admin, vlpr_bundles["1.0.0"])
    refused = acme.admin.post("/v1/environments/dev/deployments", json={"circuit": LPR, "version": "1.0.0"})
    detail = problem(refused, 422)["detail"]
    assert re.search(r"^object Contact: \d+ custom fields would exceed the limit of 3 per object", detail), detail
    assert "(max_custom_fields_per_object)" in detail
    assert versions(acme, "dev") == []
    problem(acme.admin.get("/v1/query", params={"soql": "SELECT VLPR_Score__c FROM Contact", "env": "dev"}), 400)

    acme.configure(max_custom_fields_per_object=500, max_custom_objects=1)  # Virtual LPR declares one
    deploy(acme.admin, vlpr_bundles["1.0.0"])
    two = "".join(f'\n[[schema.objects]]\nname = "Extra{i}__c"\n' for i in range(2))
    upload(acme.admin, variant(vlpr_bundles["1.0.0"], tmp_path / "objects.circuit", "7.0.0", two))
    deploying = {"circuit": LPR, "version": "7.0.0"}
    detail = problem(acme.admin.post("/v1/environments/dev/deployments", json=deploying), 422)["detail"]
    assert "3 custom objects would exceed this environment's limit of 1 (max_custom_objects)" in detail  # 1 + 2
    assert versions(acme, "dev") == ["1.0.0"]
    problem(acme.admin.get("/v1/query", params={"soql": "SELECT Id FROM Extra0__c", "env": "dev"}), 400)
    acme.configure(max_custom_objects=3)  # an operator raises the tenant's cap: the same deploy goes through
    accepted = acme.admin.post("/v1/environments/dev/deployments", json=deploying)
    assert accepted.status_code == 200, accepted.text
    assert query(acme.admin, "SELECT Id FROM Extra1__c") == []


# --- promotion ---------------------------------------------------------------------------------------


def test_promotion_copies_the_active_versions_through_the_gate(acme: Tenant, vlpr_bundles: dict[str, Path]) -> None:
    [active] = deploy(acme.admin, vlpr_bundles["1.1.0"])
    answer = acme.admin.post("/v1/promotions", json={"from": "dev", "to": "staging", "circuit": LPR})
    assert answer.status_code == 202, answer.text  # the gate runs in a job, not in this request
    gate = answer.json()
    assert (gate["kind"], gate["from_env"], gate["env"], gate["circuits"]) == (
        "promotion",
        "dev",
        "staging",
        {LPR: "1.1.0"},
    )
    assert (gate["circuit"], gate["version"], gate["actor"]) == (LPR, "1.1.0", admin_actor(acme))
    assert gate_verdict(acme.admin, answer)["state"] == "passed"
    assert acme.admin.get("/v1/environments/staging/circuits").json() == [active]
    assert versions(acme, "dev") == ["1.1.0"]
    [run] = acme.admin.get("/v1/gate-runs").json()
    assert (run["env"], run["version"], run["passed"]) == ("staging", "1.1.0", True)
    assert acme.admin.get(f"/v1/gate-runs/{gate['gate_run']}").json()["coverage"] == run["coverage"]
    promotion = acme.admin.get("/v1/audit").json()[0]
    assert (promotion["action"], promotion["env"], promotion["to_version"]) == ("promote", "staging", "1.1.0")
    assert promotion["gate"] == run


def test_promoting_untested_code_is_refused(acme: Tenant, vlpr_bundles: dict[str, Path], tmp_path: Path) -> None:
    deploy(acme.admin, variant(vlpr_bundles["1.0.0"], tmp_path / "untested.circuit", "5.0.0", members=("module.wasm",)))
    refused = gate_verdict(acme.admin, acme.admin.post("/v1/promotions", json={"from": "dev", "to": "production"}))
    assert refused["state"] == "refused" and "has no tests" in refused["detail"], refused
    assert versions(acme, "production") == []
    assert [a["action"] for a in acme.admin.get("/v1/audit").json()].count("promote") == 0


def test_a_promotion_into_dev_is_immediate(acme: Tenant, vlpr_bundles: dict[str, Path]) -> None:
    [active] = deploy(acme.admin, vlpr_bundles["1.0.0"], env="staging")
    promoted = acme.admin.post("/v1/promotions", json={"from": "staging", "to": "dev"})
    assert promoted.status_code == 200, promoted.text
    assert promoted.json() == [active]


def test_promotion_needs_two_environments_and_something_to_promote(
    acme: Tenant, globex: Tenant, vlpr_bundles: dict[str, Path]
) -> None:
    deploy(acme.admin, vlpr_bundles["1.0.0"])
    problem(acme.admin.post("/v1/promotions", json={"from": "dev", "to": "dev"}), 422)
    problem(acme.admin.post("/v1/promotions", json={"from": "staging", "to": "dev"}), 404)
    problem(acme.admin.post("/v1/promotions", json={"from": "dev", "to": "staging", "circuit": "other"}), 404)
    problem(globex.admin.post("/v1/promotions", json={"from": "dev", "to": "staging"}), 404)
    assert versions(acme, "staging") == versions(globex, "staging") == []


# --- audit trail -------------------------------------------------------------------------------------


def test_the_audit_trail_lists_every_change_newest_first_with_who_made_it(
    acme: Tenant, globex: Tenant, vlpr_bundles: dict[str, Path]
) -> None:
    deployer_key = acme.key("deploy")
    deployer = acme.client(deployer_key)
    deploy(acme.admin, vlpr_bundles["1.0.0"])
    deploy(deployer, vlpr_bundles["1.1.0"])
    assert rollback(acme, "dev").status_code == 200
    trail = acme.admin.get("/v1/audit").json()
    assert [(a["action"], a["env"], a["from_version"], a["to_version"]) for a in trail] == [
        ("rollback", "dev", "1.1.0", "1.0.0"),
        ("deploy", "dev", "1.0.0", "1.1.0"),
        ("upload", None, None, "1.1.0"),
        ("deploy", "dev", None, "1.0.0"),
        ("upload", None, None, "1.0.0"),
    ]
    admin = admin_actor(acme)
    assert [a["actor"] == admin for a in trail] == [True, False, False, True, True]
    assert trail[1]["actor"].startswith("key:") and all(a["gate"] is None for a in trail)  # dev is not gated
    assert [a["action"] for a in acme.admin.get("/v1/audit", params={"limit": 2}).json()] == ["rollback", "deploy"]
    assert globex.admin.get("/v1/audit").json() == []


@pytest.mark.parametrize("path", ["/v1/audit", "/v1/gate-runs"])
@pytest.mark.parametrize("limit", [0, 1001, "many"])
def test_audit_and_gate_run_limits_are_checked(acme: Tenant, path: str, limit: object) -> None:
    assert "query.limit" in problem(acme.admin.get(path, params={"limit": limit}), 422)["detail"]


# --- webhook URLs ------------------------------------------------------------------------------------


def test_each_environment_has_its_own_webhook_urls_until_rotated(acme: Tenant, globex: Tenant) -> None:
    dev = acme.admin.get("/v1/environments/dev/webhooks").json()
    assert dev["env"] == "dev" and {"ghl", "generic", "salesforce-cdc"} <= set(dev["urls"])
    tokens = {url.rsplit("/", 1)[1] for url in dev["urls"].values()}
    assert len(tokens) == 1  # one token per environment, one URL per source
    assert all(url == f"http://127.0.0.1:8080/v1/hooks/{s}/{next(iter(tokens))}" for s, url in dev["urls"].items())
    again = acme.admin.get("/v1/environments/dev/webhooks")  # the token is stored hashed: shown once
    assert again.status_code == 409 and "/v1/environments/dev/webhooks/rotate" in again.json()["detail"]
    production = acme.admin.get("/v1/environments/production/webhooks").json()
    theirs = globex.admin.get("/v1/environments/dev/webhooks").json()
    assert len({dev["urls"]["ghl"], production["urls"]["ghl"], theirs["urls"]["ghl"]}) == 3
    rotated = acme.admin.post("/v1/environments/dev/webhooks/rotate")
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["urls"]["ghl"] != dev["urls"]["ghl"]
    assert acme.admin.get("/v1/environments/dev/webhooks").status_code == 409
    resolve = acme.server.state.platform.tenants.resolve_webhook_token
    assert resolve(rotated.json()["urls"]["ghl"].rsplit("/", 1)[1]) == (acme.id, "dev")
    assert resolve(dev["urls"]["ghl"].rsplit("/", 1)[1]) is None  # the old URL stopped working
    assert resolve(production["urls"]["ghl"].rsplit("/", 1)[1]) == (acme.id, "production")


# --- authentication and scopes -----------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body", "scope"), ROUTES)
def test_every_route_needs_a_key_with_its_scope(
    acme: Tenant, method: str, path: str, body: dict[str, str] | None, scope: str
) -> None:
    problem(acme.client(None).request(method, path, json=body), 401)
    problem(acme.client("cs_forged_key").request(method, path, json=body), 401)
    assert (
        f"'{scope}'"
        in problem(acme.client(acme.key(OTHER_SCOPE[scope])).request(method, path, json=body), 403)["detail"]
    )
