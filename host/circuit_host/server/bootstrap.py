"""First start of ``circuit serve`` on a fresh data directory: a tenant, a key and a live circuit.

The default tenant gets an admin API key and production webhook URLs (both stored hashed, so
their plaintext is shown on this start only and written once to ``DATA_DIR/admin-credentials.json``,
mode 0600, so the operator can read them again) and the Virtual LPR example built, bundled,
uploaded and deployed to ``production``. Later starts say where that file is instead.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..bundles import pack_bundle
from ..connectors.crm import crm_registry
from ..resources import example_dir
from ..toolchain.zig_build import build_circuit, build_tests
from .deploy_path import upload_bundle
from .state import ServerState

EXAMPLE = example_dir("virtual_lpr")
CREDENTIALS = "admin-credentials.json"


@dataclass(frozen=True)
class Bootstrap:
    tenant_id: str
    credentials: Path  # admin-credentials.json
    admin_key: str | None  # on the first start only
    webhook_urls: dict[str, str] | None  # production's, by source; on the first start only


def bootstrap(state: ServerState, example: Path = EXAMPLE) -> Bootstrap:
    """Create the default tenant and deploy the example once; later starts just name the credentials file."""
    path = state.settings.data_dir / CREDENTIALS
    if path.exists():
        return Bootstrap(json.loads(path.read_text())["tenant_id"], path, None, None)
    tenant = state.platform.tenants.create_tenant("default")
    _, key = state.platform.tenants.create_api_key(tenant.id, ["admin"], "created by circuit serve")
    token = state.platform.tenants.rotate_webhook_token(tenant.id, "production")
    base = state.settings.public_url.rstrip("/")
    urls = {source: f"{base}/v1/hooks/{source}/{token}" for source in crm_registry.sources()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"tenant_id": tenant.id, "admin_key": key, "production_webhooks": urls}, out, indent=2)
    wasm = build_circuit(example, state.settings.data_dir / "build")
    tests = build_tests(example, state.settings.data_dir / "build")  # production deploys run them
    bundle = pack_bundle(example / "circuit.toml", wasm, state.settings.data_dir / "build", tests)
    info = upload_bundle(state.platform, state.runtime, tenant.id, bundle.read_bytes(), "bootstrap")
    state.deploy(tenant.id, "production", info.name, info.version, "bootstrap")
    return Bootstrap(tenant.id, path, key, urls)
