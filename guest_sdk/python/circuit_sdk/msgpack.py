"""A small pure-Python msgpack codec (the guest cannot load C extensions).

Covers the ABI's types: nil, bool, int (int64/uint64), float (decodes float32 and float64,
encodes float64), str, bin, array, map. Extension types are rejected.
"""

from __future__ import annotations

import struct
from typing import Any

__all__ = ["MsgpackError", "packb", "unpackb"]


class MsgpackError(ValueError):
    """Malformed or unsupported msgpack."""


def packb(value: Any) -> bytes:
    out = bytearray()
    _pack(value, out)
    return bytes(out)


def _pack(v: Any, out: bytearray) -> None:
    if v is None:
        out.append(0xC0)
    elif v is True:
        out.append(0xC3)
    elif v is False:
        out.append(0xC2)
    elif isinstance(v, int):
        if 0 <= v < 0x80:
            out.append(v)
        elif -32 <= v < 0:
            out.append(v & 0xFF)
        elif 0 <= v <= 0xFF:
            out += b"\xcc" + struct.pack(">B", v)
        elif 0 <= v <= 0xFFFF:
            out += b"\xcd" + struct.pack(">H", v)
        elif 0 <= v <= 0xFFFFFFFF:
            out += b"\xce" + struct.pack(">I", v)
        elif 0 <= v <= 0xFFFFFFFFFFFFFFFF:
            out += b"\xcf" + struct.pack(">Q", v)
        elif v >= -0x80:
            out += b"\xd0" + struct.pack(">b", v)
        elif v >= -0x8000:
            out += b"\xd1" + struct.pack(">h", v)
        elif v >= -0x80000000:
            out += b"\xd2" + struct.pack(">i", v)
        elif v >= -0x8000000000000000:
            out += b"\xd3" + struct.pack(">q", v)
        else:
            raise MsgpackError(f"integer {v} does not fit in 64 bits")
    elif isinstance(v, float):
        out += b"\xcb" + struct.pack(">d", v)
    elif isinstance(v, str):
        data = v.encode("utf-8")
        n = len(data)
        if n < 32:
            out.append(0xA0 | n)
        elif n <= 0xFF:
            out += b"\xd9" + struct.pack(">B", n)
        elif n <= 0xFFFF:
            out += b"\xda" + struct.pack(">H", n)
        else:
            out += b"\xdb" + struct.pack(">I", n)
        out += data
    elif isinstance(v, bytes | bytearray | memoryview):
        data = bytes(v)
        n = len(data)
        if n <= 0xFF:
            out += b"\xc4" + struct.pack(">B", n)
        elif n <= 0xFFFF:
            out += b"\xc5" + struct.pack(">H", n)
        else:
            out += b"\xc6" + struct.pack(">I", n)
        out += data
    elif isinstance(v, list | tuple):
        n = len(v)
        if n < 16:
            out.append(0x90 | n)
        elif n <= 0xFFFF:
            out += b"\xdc" + struct.pack(">H", n)
        else:
            out += b"\xdd" + struct.pack(">I", n)
        for item in v:
            _pack(item, out)
    elif isinstance(v, dict):
        n = len(v)
        if n < 16:
            out.append(0x80 | n)
        elif n <= 0xFFFF:
            out += b"\xde" + struct.pack(">H", n)
        else:
            out += b"\xdf" + struct.pack(">I", n)
        for key, item in v.items():
            if not isinstance(key, str):
                raise MsgpackError("map keys must be str")
            _pack(key, out)
            _pack(item, out)
    else:
        raise MsgpackError(f"cannot encode {type(v).__name__}")


def unpackb(data: bytes) -> Any:
    value, pos = _unpack(memoryview(bytes(data)), 0, 0)
    if pos != len(data):
        raise MsgpackError("extra data after the msgpack value")
    return value


_FIXED = {
    0xCC: (">B", 1), 0xCD: (">H", 2), 0xCE: (">I", 4), 0xCF: (">Q", 8),
    0xD0: (">b", 1), 0xD1: (">h", 2), 0xD2: (">i", 4), 0xD3: (">q", 8),
    0xCA: (">f", 4), 0xCB: (">d", 8),
}  # fmt: skip


def _take(buf: memoryview, pos: int, n: int) -> int:
    end = pos + n
    if end > len(buf):
        raise MsgpackError("truncated msgpack")
    return end


def _unpack(buf: memoryview, pos: int, depth: int) -> tuple[Any, int]:
    if depth > 64:
        raise MsgpackError("msgpack nested too deeply")
    end = _take(buf, pos, 1)
    b = buf[pos]
    pos = end
    if b <= 0x7F:
        return b, pos
    if b >= 0xE0:
        return b - 0x100, pos
    if 0xA0 <= b <= 0xBF:
        return _str(buf, pos, b & 0x1F)
    if 0x90 <= b <= 0x9F:
        return _array(buf, pos, b & 0x0F, depth)
    if 0x80 <= b <= 0x8F:
        return _map(buf, pos, b & 0x0F, depth)
    if b == 0xC0:
        return None, pos
    if b == 0xC2:
        return False, pos
    if b == 0xC3:
        return True, pos
    if b in _FIXED:
        fmt, size = _FIXED[b]
        end = _take(buf, pos, size)
        return struct.unpack(fmt, buf[pos:end])[0], end
    if b in (0xD9, 0xDA, 0xDB, 0xC4, 0xC5, 0xC6, 0xDC, 0xDD, 0xDE, 0xDF):
        size = {0xD9: 1, 0xDA: 2, 0xDB: 4, 0xC4: 1, 0xC5: 2, 0xC6: 4, 0xDC: 2, 0xDD: 4, 0xDE: 2, 0xDF: 4}[b]
        end = _take(buf, pos, size)
        n = int.from_bytes(buf[pos:end], "big")
        pos = end
        if b in (0xD9, 0xDA, 0xDB):
            return _str(buf, pos, n)
        if b in (0xC4, 0xC5, 0xC6):
            end = _take(buf, pos, n)
            return bytes(buf[pos:end]), end
        if b in (0xDC, 0xDD):
            return _array(buf, pos, n, depth)
        return _map(buf, pos, n, depth)
    raise MsgpackError(f"unsupported msgpack type byte 0x{b:02x}")


def _str(buf: memoryview, pos: int, n: int) -> tuple[str, int]:
    end = _take(buf, pos, n)
    try:
        return str(buf[pos:end], "utf-8"), end
    except UnicodeDecodeError:
        raise MsgpackError("invalid UTF-8 in msgpack str") from None


def _array(buf: memoryview, pos: int, n: int, depth: int) -> tuple[list[Any], int]:
    items = []
    for _ in range(n):
        item, pos = _unpack(buf, pos, depth + 1)
        items.append(item)
    return items, pos


def _map(buf: memoryview, pos: int, n: int, depth: int) -> tuple[dict[str, Any], int]:
    result = {}
    for _ in range(n):
        key, pos = _unpack(buf, pos, depth + 1)
        if not isinstance(key, str):
            raise MsgpackError("map keys must be str")
        result[key], pos = _unpack(buf, pos, depth + 1)
    return result, pos
