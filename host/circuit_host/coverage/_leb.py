"""LEB128, the variable-length integers of the wasm binary format and of DWARF."""

from __future__ import annotations


class DecodeError(ValueError):
    """The bytes are not what the wasm or DWARF format says they should be."""


def _read(data: bytes, pos: int, signed: bool) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise DecodeError(f"truncated LEB128 at offset {pos}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if signed and byte & 0x40:
                result -= 1 << shift
            return result, pos


def read_u(data: bytes, pos: int) -> tuple[int, int]:
    """Decode an unsigned LEB128 at `pos`; return (value, position after it)."""
    return _read(data, pos, signed=False)


def read_s(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a signed LEB128 at `pos`; return (value, position after it)."""
    return _read(data, pos, signed=True)


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
