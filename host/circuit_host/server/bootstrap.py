"""First start of ``circuit serve`` on a fresh data directory: a tenant, a key and a live circuit.

The default tenant gets an admin API key (stored hashed; its plaintext is written once to
``DATA_DIR/admin-credentials.json``, mode 0600, so the operator can read it again) and the
Virtual LPR example built, bundled, uploaded and deployed to ``production``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..bundles import pack_bundle
from ..resources import example_dir
from ..toolchain.zig_build import build_circuit, build_tests
from .deploy_path import upload_bundle
from .state import ServerState

EXAMPLE = example_dir("virtual_lpr")
CREDENTIALS = "admin-credentials.json"


@dataclass(frozen=True)
class Bootstrap:
    tenant_id: str
    admin_key: str
    webhook_token: str


def bootstrap(state: ServerState, example: Path = EXAMPLE) -> Bootstrap:
    """Create the default tenant and deploy the example once; later starts just read the credentials."""
    path = state.settings.data_dir / CREDENTIALS
    if not path.exists():
        tenant = state.platform.tenants.create_tenant("default")
        _, key = state.platform.tenants.create_api_key(tenant.id, ["admin"], "created by circuit serve")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"tenant_id": tenant.id, "admin_key": key}, out)
        wasm = build_circuit(example, state.settings.data_dir / "build")
        tests = build_tests(example, state.settings.data_dir / "build")  # production deploys run them
        bundle = pack_bundle(example / "circuit.toml", wasm, state.settings.data_dir / "build", tests)
        info = upload_bundle(state.platform, state.runtime, tenant.id, bundle.read_bytes(), "bootstrap")
        state.deploy(tenant.id, "production", info.name, info.version, "bootstrap")
    saved = json.loads(path.read_text())
    token = state.platform.tenants.webhook_token(saved["tenant_id"], "production")
    return Bootstrap(saved["tenant_id"], saved["admin_key"], token)
