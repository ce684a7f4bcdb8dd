"""LEB128, the variable-length integers of the wasm binary format and of DWARF.

Decoding reads from an offset into one buffer and stops after at most ceil(bits / 7) bytes, so a run of
continuation bytes in untrusted input costs linear time, never a big-integer shift per byte.
"""

from __future__ import annotations

from ..errors import Rejected


class DecodeError(Rejected, ValueError):
    """The bytes are not what the wasm or DWARF format says they should be (or ask for more than we read)."""


def _read(data: bytes, pos: int, signed: bool, bits: int) -> tuple[int, int]:
    start = pos
    longest = -(-bits // 7)
    result = 0
    shift = 0
    while pos < len(data) and pos - start < longest:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if signed:
                if byte & 0x40:
                    result -= 1 << shift
                if not -(1 << (bits - 1)) <= result < 1 << (bits - 1):
                    raise DecodeError(f"LEB128 at offset {start} overflows a signed {bits}-bit integer")
            elif result >> bits:
                raise DecodeError(f"LEB128 at offset {start} overflows an unsigned {bits}-bit integer")
            return result, pos
    if pos - start == longest:
        raise DecodeError(f"LEB128 at offset {start} runs past the {longest} bytes of a {bits}-bit integer")
    raise DecodeError(f"truncated LEB128 at offset {start}")


def read_u(data: bytes, pos: int, bits: int = 64) -> tuple[int, int]:
    """Decode an unsigned LEB128 of at most `bits` bits at `pos`; return (value, position after it)."""
    return _read(data, pos, False, bits)


def read_s(data: bytes, pos: int, bits: int = 64) -> tuple[int, int]:
    """Decode a signed LEB128 of at most `bits` bits at `pos`; return (value, position after it)."""
    return _read(data, pos, True, bits)


def read_count(data: bytes, pos: int, what: str, end: int | None = None, item_bytes: int = 1) -> tuple[int, int]:
    """A count of items that follow, each at least `item_bytes` long: refused when the bytes left can't hold them."""
    count, pos = _read(data, pos, False, 32)
    left = (len(data) if end is None else end) - pos
    if count * item_bytes > left:
        raise DecodeError(f"{what}: a count of {count} at offset {pos} exceeds the {left} bytes that remain")
    return count, pos


def write_u(value: int) -> bytes:
    """Encode a non-negative integer as unsigned LEB128."""
    if value < 0:
        raise ValueError(f"unsigned LEB128 of a negative number: {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def write_s(value: int) -> bytes:
    """Encode an integer as signed LEB128."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        done = (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40)
        out.append(byte if done else byte | 0x80)
        if done:
            return bytes(out)
