"""abi/circuit-test.wit lowers (wasm-tools, legacy names) to exactly the host's test signatures."""

from __future__ import annotations

import re
import subprocess

from circuit_host.abi.signatures import ABI_VERSION, TEST_EXPORT_FUNCS
from circuit_host.testing.capability import TEST_HOST_FUNCTIONS
from tests.abi.test_wit import ABI_DIR, wasm_tools


def lowered(world: str) -> str:
    command = [wasm_tools(), "component", "embed", "--dummy-names", "legacy", str(ABI_DIR), "-w", world, "-t"]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def test_the_test_world_lowers_to_the_host_signatures() -> None:
    """The frozen 1.0.0 test world is the table's 1.0.0 rows; the 1.1.0 one adds jobs (tests/abi/test_wit.py)."""
    wat = lowered("circuit-test")
    types = {m[0]: m[1] for m in re.findall(r"\(type \(;(\d+);\) \(func([^\n]*)\)\)\n", wat)}
    imports = {
        (module, name): types[ty].count("i32")
        for module, name, ty in re.findall(r'\(import "([^"]+)" "([^"]+)" \(func \(;\d+;\) \(type (\d+)\)', wat)
    }
    frozen = [function for function in TEST_HOST_FUNCTIONS if function.version == ABI_VERSION]
    assert imports == {function.key: len(function.core_params) for function in frozen}
    exports = set(re.findall(r'\(export "([^"]+)" \(func', wat))
    assert {spec.name for spec in TEST_EXPORT_FUNCS} <= exports


def test_the_production_world_has_no_testing() -> None:
    assert "testing" not in lowered("circuit")
