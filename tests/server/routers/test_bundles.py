"""/v1/bundles: uploads are validated, content-addressed and immutable per tenant; listing shows the tenant's own."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.server.routers.conftest import OTHER_SCOPE, ZIP, Tenant, problem, upload
from tests.server.test_end_to_end import variant


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def members(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_an_upload_is_stored_under_its_sha256_and_listed(acme: Tenant, vlpr_bundles: dict[str, Path]) -> None:
    data = vlpr_bundles["1.0.0"].read_bytes()
    assert acme.admin.get("/v1/bundles").json() == []
    info = upload(acme.admin, vlpr_bundles["1.0.0"])
    assert (info["name"], info["version"], info["sha256"]) == ("virtual_lpr", "1.0.0", hashlib.sha256(data).hexdigest())
    assert acme.admin.get("/v1/bundles").json() == [info]


def test_uploading_the_same_bytes_again_returns_the_stored_bundle(acme: Tenant, vlpr_bundles: dict[str, Path]) -> None:
    first = upload(acme.admin, vlpr_bundles["1.0.0"])
    assert upload(acme.admin, vlpr_bundles["1.0.0"]) == first  # same upload time: nothing was stored twice
    assert acme.admin.get("/v1/bundles").json() == [first]


def test_every_version_is_listed(acme: Tenant, vlpr_bundles: dict[str, Path]) -> None:
    uploaded = [upload(acme.admin, vlpr_bundles[v]) for v in ("1.0.0", "1.1.0")]
    listed = acme.admin.get("/v1/bundles").json()
    assert sorted((b["version"], b["sha256"]) for b in listed) == [(b["version"], b["sha256"]) for b in uploaded]


def test_other_bytes_under_an_uploaded_version_are_a_conflict(
    acme: Tenant, vlpr_bundles: dict[str, Path], tmp_path: Path
) -> None:
    upload(acme.admin, vlpr_bundles["1.0.0"])
    changed = variant(vlpr_bundles["1.0.0"], tmp_path / "changed.circuit", "1.0.0", members=("module.wasm",))
    conflict = problem(acme.admin.post("/v1/bundles", content=changed.read_bytes(), headers=ZIP), 409)
    assert "1.0.0" in conflict["detail"]
    assert [b["version"] for b in acme.admin.get("/v1/bundles").json()] == ["1.0.0"]


def test_tenants_have_separate_bundle_stores(
    acme: Tenant, globex: Tenant, vlpr_bundles: dict[str, Path], tmp_path: Path
) -> None:
    upload(acme.admin, vlpr_bundles["1.0.0"])
    assert globex.admin.get("/v1/bundles").json() == []
    # globex may use the same name and version for bytes of its own: acme's upload is not in its way.
    own = variant(vlpr_bundles["1.0.0"], tmp_path / "globex.circuit", "1.0.0", members=("module.wasm",))
    theirs = upload(globex.admin, own)
    assert theirs["sha256"] == hashlib.sha256(own.read_bytes()).hexdigest()
    assert [b["sha256"] for b in acme.admin.get("/v1/bundles").json()] != [theirs["sha256"]]


@pytest.mark.parametrize(
    ("broken", "words"),
    [
        (lambda files: b"not a zip", "not a valid zip"),
        (lambda files: zipped({k: v for k, v in files.items() if k != "module.wasm"}), "module.wasm is missing"),
        (lambda files: zipped({**files, "module.wasm": b"\0asm garbage"}), "module.wasm"),
        (lambda files: zipped({**files, "circuit.toml": b"[circuit\nname ="}), "invalid TOML"),
        (lambda files: zipped({**files, "notes.txt": b"hi"}), "unexpected member 'notes.txt'"),
        (lambda files: zipped({**files, "../escape": b"x"}), "escapes the bundle"),
        (lambda files: zipped({**files, "circuit.toml": files["circuit.toml"] + b"\n[limits]\nnope = 1\n"}), "nope"),
    ],
    ids=["not-zip", "no-module", "bad-wasm", "bad-toml", "extra-member", "path-escape", "unknown-limit"],
)
def test_a_bad_bundle_is_422_saying_what_is_wrong_and_nothing_is_stored(
    acme: Tenant, vlpr_bundles: dict[str, Path], broken: Callable[[dict[str, bytes]], bytes], words: str
) -> None:
    data = broken(members(vlpr_bundles["1.0.0"]))
    refused = problem(acme.admin.post("/v1/bundles", content=data, headers=ZIP), 422)
    assert words in refused["detail"], refused
    assert acme.admin.get("/v1/bundles").json() == []


def test_a_bundle_asking_for_more_than_the_tenants_ceiling_is_refused(
    acme: Tenant, vlpr_bundles: dict[str, Path], tmp_path: Path
) -> None:
    acme.configure(max_limits={"queries": 5})
    greedy = variant(vlpr_bundles["1.0.0"], tmp_path / "greedy.circuit", "3.0.0", "\n[limits]\nqueries = 50\n")
    refused = problem(acme.admin.post("/v1/bundles", content=greedy.read_bytes(), headers=ZIP), 422)
    assert "limits.queries: 50 is above the tenant's maximum of 5" in refused["detail"]
    modest = variant(vlpr_bundles["1.0.0"], tmp_path / "modest.circuit", "3.0.1", "\n[limits]\nqueries = 5\n")
    assert upload(acme.admin, modest)["version"] == "3.0.1"


def test_an_empty_body_is_refused(acme: Tenant) -> None:
    problem(acme.admin.post("/v1/bundles", content=b"", headers=ZIP), 422)


@pytest.mark.parametrize(("method", "scope"), [("POST", "deploy"), ("GET", "read")])
def test_uploading_needs_deploy_and_listing_needs_read(
    acme: Tenant, vlpr_bundles: dict[str, Path], method: str, scope: str
) -> None:
    data = vlpr_bundles["1.0.0"].read_bytes() if method == "POST" else None
    problem(acme.client(None).request(method, "/v1/bundles", content=data, headers=ZIP), 401)
    problem(acme.client("cs_forged").request(method, "/v1/bundles", content=data, headers=ZIP), 401)
    problem(acme.client(acme.key(OTHER_SCOPE[scope])).request(method, "/v1/bundles", content=data, headers=ZIP), 403)
    allowed = acme.client(acme.key(scope)).request(method, "/v1/bundles", content=data, headers=ZIP)
    assert allowed.status_code == (201 if method == "POST" else 200), allowed.text


def test_stored_bundles_cannot_be_deleted(acme: Tenant, vlpr_bundles: dict[str, Path]) -> None:
    upload(acme.admin, vlpr_bundles["1.0.0"])
    assert problem(acme.admin.delete("/v1/bundles"), 405)["title"] == "Method Not Allowed"
    assert len(acme.admin.get("/v1/bundles").json()) == 1
