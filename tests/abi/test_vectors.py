"""The shared msgpack vectors (abi/vectors/msgpack.json) are exact and reproducible.

Each vector's bytes are the smallest msgpack encoding of its value, and decoding them
gives back exactly that value, with int, float, bool, str and bin kept apart.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import msgpack
import pytest

VECTORS_DIR = Path(__file__).resolve().parents[2] / "abi" / "vectors"
VECTORS_FILE = VECTORS_DIR / "msgpack.json"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("abi_vectors_generate", VECTORS_DIR / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = load_generator()


def from_json(value: Any) -> Any:
    """Decode the JSON form with the generator's own inverse, so the two cannot drift apart."""
    return GENERATOR.from_json(value)


def same(a: Any, b: Any) -> bool:
    """Equality that tells 1 from 1.0 from True, and keeps map key order irrelevant."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a.hex() == b.hex()  # tells 0.0 from -0.0
    return bool(a == b)


VECTORS: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))


def test_file_is_a_list_of_name_hex_value() -> None:
    assert isinstance(VECTORS, list) and VECTORS
    for vector in VECTORS:
        assert set(vector) == {"name", "hex", "value"}, vector
        assert isinstance(vector["name"], str)
        assert vector["hex"] == vector["hex"].lower()
        bytes.fromhex(vector["hex"])


def test_names_are_unique() -> None:
    names = [v["name"] for v in VECTORS]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_unpack_gives_the_value(vector: dict[str, Any]) -> None:
    decoded = msgpack.unpackb(bytes.fromhex(vector["hex"]), raw=False)
    assert same(decoded, from_json(vector["value"]))


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_pack_gives_the_bytes(vector: dict[str, Any]) -> None:
    packed = msgpack.packb(from_json(vector["value"]), use_bin_type=True)
    assert packed.hex() == vector["hex"]


def test_json_form_marks_floats_only_where_needed() -> None:
    def walk(value: Any) -> None:
        if isinstance(value, float):
            assert not value.is_integer(), f"integral float {value!r} must be written as {{'$float': ...}}"
        elif isinstance(value, dict):
            if value.keys() == {"$float"}:
                assert isinstance(value["$float"], float) and value["$float"].is_integer()
            else:
                for v in value.values():
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for vector in VECTORS:
        walk(vector["value"])


def test_generator_reproduces_the_committed_file() -> None:
    generator = load_generator()
    assert generator.render() == VECTORS_FILE.read_text(encoding="utf-8"), (
        "abi/vectors/msgpack.json is stale: run python abi/vectors/generate.py"
    )


def test_covers_every_abi_message() -> None:
    names = {v["name"] for v in VECTORS}
    for required in [
        "abi/event/after_insert",
        "abi/event/before_update",
        "abi/query/binds",
        "abi/query/response",
        "abi/dml/rows_array",
        "abi/dml/upsert_rows_map",
        "abi/dml/response",
        "abi/http/callout_request",
        "abi/http/callout_response",
        "abi/limits/usage",
        "abi/handle/before_trigger_output",
    ]:
        assert required in names


def test_covers_every_encoding_width() -> None:
    first_bytes = {bytes.fromhex(v["hex"])[0] for v in VECTORS}
    # nil, false, true, bin8, bin16, float64, uint8-64, int8-64, str8, str16, array16, map16
    for tag in bytes.fromhex("c0c2c3c4c5cbcccdcecfd0d1d2d3d9dadcde"):
        assert tag in first_bytes, hex(tag)
    ranges = {
        "positive fixint": range(0x00, 0x80),
        "fixmap": range(0x80, 0x90),
        "fixarray": range(0x90, 0xA0),
        "fixstr": range(0xA0, 0xC0),
        "negative fixint": range(0xE0, 0x100),
    }
    for family, tags in ranges.items():
        assert first_bytes & set(tags), family
