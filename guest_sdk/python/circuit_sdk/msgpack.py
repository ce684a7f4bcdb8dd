"""A small pure-Python msgpack codec (the guest cannot load C extensions).

Covers the ABI's types: nil, bool, int (int64/uint64), float (decodes float32 and float64,
encodes float64), str, bin, array, map with str keys. Extension types are rejected. Output is
the smallest encoding of each value, byte for byte what ``abi/vectors/msgpack.json`` gives.

Every execution decodes its event and encodes its writes here, inside the interpreter, so the
codec is written for speed: exact-type dispatch first (subclasses fall back to ``isinstance``),
one closure over the input instead of slicing, the common one-byte headers tested first.
"""

from __future__ import annotations

import struct
from typing import Any

__all__ = ["MsgpackError", "packb", "unpackb"]

MAX_DEPTH = 64


class MsgpackError(ValueError):
    """Malformed or unsupported msgpack."""


_pack_u16 = struct.Struct(">H").pack
_pack_u32 = struct.Struct(">I").pack
_pack_double = struct.Struct(">d").pack


def packb(value: Any) -> bytes:
    out = bytearray()
    _pack(value, out, 0)
    return bytes(out)


def _pack(v: Any, out: bytearray, depth: int) -> None:
    t = type(v)
    if t is str:
        _pack_str(v, out)
    elif t is int:
        _pack_int(v, out)
    elif v is None:
        out.append(0xC0)
    elif v is True:
        out.append(0xC3)
    elif v is False:
        out.append(0xC2)
    elif t is dict:
        _pack_map(v, out, depth)
    elif t is list or t is tuple:
        _pack_array(v, out, depth)
    elif t is float:
        out.append(0xCB)
        out += _pack_double(v)
    elif isinstance(v, bool):
        out.append(0xC3 if v else 0xC2)
    elif isinstance(v, int):
        _pack_int(int(v), out)
    elif isinstance(v, float):
        out.append(0xCB)
        out += _pack_double(float(v))
    elif isinstance(v, str):
        _pack_str(str(v), out)
    elif isinstance(v, bytes | bytearray | memoryview):
        _pack_bin(bytes(v), out)
    elif isinstance(v, list | tuple):
        _pack_array(v, out, depth)
    elif isinstance(v, dict):
        _pack_map(v, out, depth)
    else:
        raise MsgpackError(f"cannot encode {type(v).__name__}")


def _pack_str(v: str, out: bytearray) -> None:
    data = v.encode("utf-8")
    n = len(data)
    if n < 32:
        out.append(0xA0 | n)
    else:
        _pack_length(n, out, 0xD9, "str")
    out += data


def _pack_bin(data: bytes, out: bytearray) -> None:
    _pack_length(len(data), out, 0xC4, "bin")
    out += data


def _pack_length(n: int, out: bytearray, first: int, what: str) -> None:
    """The 8-, 16- or 32-bit length header of a str (0xd9..0xdb) or bin (0xc4..0xc6)."""
    if n <= 0xFF:
        out.append(first)
        out.append(n)
    elif n <= 0xFFFF:
        out.append(first + 1)
        out += _pack_u16(n)
    elif n <= 0xFFFFFFFF:
        out.append(first + 2)
        out += _pack_u32(n)
    else:
        raise MsgpackError(f"{what} longer than 4 GiB")


def _pack_int(v: int, out: bytearray) -> None:
    if 0 <= v < 0x80:
        out.append(v)
    elif -32 <= v < 0:
        out.append(v & 0xFF)
    elif v > 0:
        if v <= 0xFF:
            out.append(0xCC)
            out.append(v)
        elif v <= 0xFFFF:
            out.append(0xCD)
            out += v.to_bytes(2, "big")
        elif v <= 0xFFFFFFFF:
            out.append(0xCE)
            out += v.to_bytes(4, "big")
        elif v <= 0xFFFFFFFFFFFFFFFF:
            out.append(0xCF)
            out += v.to_bytes(8, "big")
        else:
            raise MsgpackError(f"integer {v} does not fit in 64 bits")
    elif v >= -0x80:
        out.append(0xD0)
        out += v.to_bytes(1, "big", signed=True)
    elif v >= -0x8000:
        out.append(0xD1)
        out += v.to_bytes(2, "big", signed=True)
    elif v >= -0x80000000:
        out.append(0xD2)
        out += v.to_bytes(4, "big", signed=True)
    elif v >= -0x8000000000000000:
        out.append(0xD3)
        out += v.to_bytes(8, "big", signed=True)
    else:
        raise MsgpackError(f"integer {v} does not fit in 64 bits")


def _pack_array(v: Any, out: bytearray, depth: int) -> None:
    _pack_container(len(v), out, depth, 0x90, 0xDC)
    depth += 1
    for item in v:
        _pack(item, out, depth)


def _pack_map(v: Any, out: bytearray, depth: int) -> None:
    _pack_container(len(v), out, depth, 0x80, 0xDE)
    depth += 1
    for key, item in v.items():
        if type(key) is not str and not isinstance(key, str):
            raise MsgpackError("map keys must be str")
        _pack_str(key, out)
        _pack(item, out, depth)


def _pack_container(n: int, out: bytearray, depth: int, fixed: int, first: int) -> None:
    """The header of an array (fix 0x90, 0xdc/0xdd) or a map (fix 0x80, 0xde/0xdf) of ``n`` items."""
    if depth >= MAX_DEPTH:
        raise MsgpackError("value nested too deeply")
    if n < 16:
        out.append(fixed | n)
    elif n <= 0xFFFF:
        out.append(first)
        out += _pack_u16(n)
    else:
        out.append(first + 1)
        out += _pack_u32(n)


_unpack_float = struct.Struct(">f").unpack_from
_unpack_double = struct.Struct(">d").unpack_from
# type byte -> (size, signed) of the fixed-width ints
_INTS = {
    0xCC: (1, False), 0xCD: (2, False), 0xCE: (4, False), 0xCF: (8, False),
    0xD0: (1, True), 0xD1: (2, True), 0xD2: (4, True), 0xD3: (8, True),
}  # fmt: skip
# type byte -> width of the length that follows (str8/16/32, bin8/16/32, array16/32, map16/32)
_LENGTHS = {0xD9: 1, 0xDA: 2, 0xDB: 4, 0xC4: 1, 0xC5: 2, 0xC6: 4, 0xDC: 2, 0xDD: 4, 0xDE: 2, 0xDF: 4}


def unpackb(data: bytes | bytearray | memoryview) -> Any:
    """Decode exactly one msgpack value; raise ``MsgpackError`` for anything malformed."""
    buf = bytes(data)
    size = len(buf)
    from_bytes = int.from_bytes

    def need(end: int) -> int:
        if end > size:
            raise MsgpackError("truncated msgpack")
        return end

    def value(pos: int, depth: int) -> tuple[Any, int]:
        if pos >= size:
            raise MsgpackError("truncated msgpack")
        b = buf[pos]
        pos += 1
        if 0xA0 <= b <= 0xBF:  # fixstr: every map key
            end = pos + (b & 0x1F)
            if end > size:
                raise MsgpackError("truncated msgpack")
            return buf[pos:end].decode("utf-8"), end
        if b <= 0x7F:
            return b, pos
        if b <= 0x8F:
            return mapping(pos, b & 0x0F, depth)
        if b <= 0x9F:
            return array(pos, b & 0x0F, depth)
        if b >= 0xE0:
            return b - 0x100, pos
        if b == 0xC0:
            return None, pos
        if b == 0xC3:
            return True, pos
        if b == 0xC2:
            return False, pos
        fixed = _INTS.get(b)
        if fixed is not None:
            width, signed = fixed
            end = need(pos + width)
            return from_bytes(buf[pos:end], "big", signed=signed), end
        if b == 0xCB:
            end = need(pos + 8)
            return _unpack_double(buf, pos)[0], end
        if b == 0xCA:
            end = need(pos + 4)
            return _unpack_float(buf, pos)[0], end
        width = _LENGTHS.get(b)
        if width is None:
            raise MsgpackError(f"unsupported msgpack type byte 0x{b:02x}")
        end = need(pos + width)
        n = from_bytes(buf[pos:end], "big")
        pos = end
        if b >= 0xDC:
            return (array if b <= 0xDD else mapping)(pos, n, depth)
        end = need(pos + n)
        if b >= 0xD9:
            return buf[pos:end].decode("utf-8"), end
        return buf[pos:end], end

    def array(pos: int, n: int, depth: int) -> tuple[list[Any], int]:
        if depth >= MAX_DEPTH:
            raise MsgpackError("msgpack nested too deeply")
        if n > size - pos:  # every item takes at least one byte
            raise MsgpackError("truncated msgpack")
        items = []
        append = items.append
        depth += 1
        for _ in range(n):
            item, pos = value(pos, depth)
            append(item)
        return items, pos

    def mapping(pos: int, n: int, depth: int) -> tuple[dict[str, Any], int]:
        if depth >= MAX_DEPTH:
            raise MsgpackError("msgpack nested too deeply")
        if 2 * n > size - pos:
            raise MsgpackError("truncated msgpack")
        result: dict[str, Any] = {}
        depth += 1
        for _ in range(n):
            key, pos = value(pos, depth)
            if type(key) is not str:
                raise MsgpackError("map keys must be str")
            result[key], pos = value(pos, depth)
        return result, pos

    try:
        decoded, end = value(0, 0)
    except UnicodeDecodeError:
        raise MsgpackError("invalid UTF-8 in msgpack str") from None
    except RecursionError:
        raise MsgpackError("msgpack nested too deeply") from None
    if end != size:
        raise MsgpackError("extra data after the msgpack value")
    return decoded
