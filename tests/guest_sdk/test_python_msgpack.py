"""The Python guest SDK's pure-Python msgpack codec: the shared ABI vectors byte for byte, agreement
with the reference implementation on generated values, and a clear error for every malformed input.

The codec runs inside the sandbox on every event; here it is imported natively (same source).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import msgpack as reference
import pytest

from tests.abi.test_vectors import VECTORS, from_json, same

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "guest_sdk" / "python"))
from circuit_sdk.msgpack import MsgpackError, packb, unpackb


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vectors_decode_and_encode_byte_for_byte(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    value = from_json(vector["value"])
    assert same(unpackb(data), value)
    assert packb(value) == data


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([rng.randint(-40, 130), rng.randint(-(2**63), 2**64 - 1), rng.randint(-70000, 70000)])
    if kind == 2:
        return rng.choice([rng.uniform(-1e6, 1e6), 0.0, -0.0, 1e308])
    if kind == 3:
        sizes = [0, 5, 31, 32, 300] + ([70000] if depth == 0 else [])  # str8, str16 and str32 headers
        return "é€😀" * (rng.choice(sizes) // 3) + "a" * rng.randrange(3)
    if kind == 4:
        return rng.randbytes(rng.choice([0, 1, 255, 256] + ([70000] if depth == 0 else [])))
    if kind == 5:
        return rng.randint(0, 2**32)
    if kind in (6, 7):
        return [random_value(rng, depth + 1) for _ in range(rng.choice([0, 3, 15, 16, 40]))]
    return {f"k{i}é": random_value(rng, depth + 1) for i in range(rng.choice([0, 2, 15, 16, 20]))}


@pytest.mark.parametrize("seed", range(40))
def test_agrees_with_the_reference_implementation(seed: int) -> None:
    value = random_value(random.Random(seed))
    data = reference.packb(value, use_bin_type=True)
    assert packb(value) == data
    assert same(unpackb(data), reference.unpackb(data, raw=False, strict_map_key=True))


def test_subclasses_and_tuples_encode_as_their_base_type() -> None:
    class Rows(list[Any]):
        total_size = 3

    class Flag(int):
        pass

    assert packb(Rows([1, 2])) == packb([1, 2])
    assert packb((1, "a")) == packb([1, "a"])
    assert packb(Flag(300)) == packb(300)
    assert packb(bytearray(b"ab")) == packb(b"ab") == packb(memoryview(b"ab"))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2**64, "does not fit in 64 bits"),
        (-(2**63) - 1, "does not fit in 64 bits"),
        ({1: "x"}, "map keys must be str"),
        ({1.5}, "cannot encode set"),
        (object(), "cannot encode object"),
    ],
)
def test_unencodable_values_are_refused(value: Any, message: str) -> None:
    with pytest.raises(MsgpackError, match=message):
        packb(value)


def test_nesting_is_bounded_both_ways() -> None:
    deep: Any = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(MsgpackError, match="nested too deeply"):
        packb(deep)
    with pytest.raises(MsgpackError, match="nested too deeply"):
        unpackb(b"\x91" * 100 + b"\xc0")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated"),
        (b"\xc0\xc0", "extra data"),
        (b"\xa3ab", "truncated"),
        (b"\xd9\x05abc", "truncated"),
        (b"\xcd\x01", "truncated"),
        (b"\xcb\x00\x00", "truncated"),
        (b"\xdd\xff\xff\xff\xff", "truncated"),  # 4 G items declared, none there: refused before looping
        (b"\xdf\xff\xff\xff\xff", "truncated"),
        (b"\xc6\xff\xff\xff\xff", "truncated"),
        (b"\xa2\xff\xfe", "invalid UTF-8"),
        (b"\x81\x01\xc0", "map keys must be str"),
        (b"\xd4\x01\x02", "unsupported msgpack type byte 0xd4"),  # fixext 1
        (b"\xc1", "unsupported msgpack type byte 0xc1"),  # never used
    ],
)
def test_malformed_input_is_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(MsgpackError, match=message):
        unpackb(data)


def test_every_prefix_of_a_real_payload_is_refused_cleanly() -> None:
    data = reference.packb({"new": [{"Id": "003", "N": 2**40, "F": 1.5, "B": b"\x00\x01", "S": "é" * 40}]})
    for cut in range(len(data)):
        with pytest.raises(MsgpackError):
            unpackb(data[:cut])
    assert unpackb(bytearray(data)) == unpackb(memoryview(data)) == reference.unpackb(data)
