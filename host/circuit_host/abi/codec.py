"""msgpack at the ABI boundary: strict decoding of guest payloads, canonical encoding of replies."""

from __future__ import annotations

from typing import Any

import msgpack

from ..errors import GuestFault

# Depth and size caps keep a hostile payload from exhausting the host while decoding.
_MAX_DEPTH_HINT = 64


def encode(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def decode(data: bytes, what: str) -> Any:
    """Decode a guest payload; malformed msgpack is a guest fault (it traps)."""
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            ext_hook=_reject_ext,
        )
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, TypeError) as exc:
        raise GuestFault(f"{what}: malformed msgpack ({type(exc).__name__}: {exc})") from None
    _check_depth(value, what)
    return value


def _reject_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} is not part of the ABI")


def _check_depth(value: Any, what: str, depth: int = 0) -> None:
    if depth > _MAX_DEPTH_HINT:
        raise GuestFault(f"{what}: msgpack nested deeper than {_MAX_DEPTH_HINT} levels")
    if isinstance(value, list):
        for item in value:
            _check_depth(item, what, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _check_depth(item, what, depth + 1)
