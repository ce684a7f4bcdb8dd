"""Bounds-checked access to one instance's linear memory.

Guest pointers and lengths are unsigned 32-bit values that wasmtime hands to Python as
signed ints, and ``Memory.read`` silently clamps out-of-range reads, so every access
goes through ``_checked_range`` here. Any violation raises ``GuestFault``, which unwinds
the guest and fails the execution.
"""

from __future__ import annotations

import ctypes
import struct
from typing import Any

from ..errors import GuestFault
from .signatures import AREA_ALIGN, LIST_AREA_SIZE, RESULT_AREA_SIZE

U32 = 0xFFFFFFFF
_RESULT_AREA = struct.Struct("<B3xII")
_LIST_AREA = struct.Struct("<II")


def as_u32(value: int) -> int:
    """Reinterpret an i32 received from wasmtime as the unsigned value the guest meant."""
    return value & U32


class GuestMemory:
    """The exported ``memory`` and ``cabi_realloc`` of one instance, seen through a store."""

    def __init__(self, store: Any, memory: Any, realloc: Any) -> None:
        self._store = store
        self._memory = memory
        self._realloc = realloc
        # True while the host is inside cabi_realloc / cabi_post_handle: imports then trap.
        self.in_callback = False

    @property
    def size(self) -> int:
        return int(self._memory.data_len(self._store))

    def _base(self) -> int:
        # Re-read on every access: memory may move when the guest grows it.
        return ctypes.addressof(self._memory.data_ptr(self._store).contents)

    def call_back(self, func: Any, *args: int) -> Any:
        """Call a guest export from the host (``cabi_realloc``, ``cabi_post_handle``).

        The guest may not call back into the host from there.
        """
        self.in_callback = True
        try:
            return func(self._store, *args)
        finally:
            self.in_callback = False

    def _checked_range(self, ptr: int, length: int, what: str) -> tuple[int, int]:
        ptr, length = as_u32(ptr), as_u32(length)
        size = self.size
        if ptr + length > size:
            raise GuestFault(f"{what}: range [{ptr:#x}, {ptr + length:#x}) is outside guest memory of {size} bytes")
        return ptr, length

    def read(self, ptr: int, length: int, what: str) -> bytes:
        ptr, length = self._checked_range(ptr, length, what)
        if length == 0:
            return b""
        return ctypes.string_at(self._base() + ptr, length)

    def read_str(self, ptr: int, length: int, what: str) -> str:
        raw = self.read(ptr, length, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GuestFault(f"{what}: invalid UTF-8 at byte {exc.start}") from None

    def write(self, ptr: int, data: bytes, what: str) -> None:
        ptr, _ = self._checked_range(ptr, len(data), what)
        if data:
            ctypes.memmove(self._base() + ptr, data, len(data))

    def allocate(self, data: bytes, what: str) -> tuple[int, int]:
        """Copy ``data`` into a buffer the guest allocates with ``cabi_realloc(0, 0, 1, len)``.

        Called for empty payloads too, as the canonical ABI does: some guest languages
        must never see a null list pointer.
        """
        if self._realloc is None:
            raise GuestFault(f"{what}: guest has no cabi_realloc export")
        ptr = as_u32(self.call_back(self._realloc, 0, 0, 1, len(data)))
        if ptr == 0 and data:
            raise GuestFault(f"{what}: cabi_realloc returned null for {len(data)} bytes")
        self.write(ptr, data, f"{what} (cabi_realloc returned {ptr:#x})")
        return ptr, len(data)

    def check_area(self, ptr: int, size: int, what: str) -> int:
        ptr = as_u32(ptr)
        if ptr % AREA_ALIGN:
            raise GuestFault(f"{what}: return area {ptr:#x} is not {AREA_ALIGN}-byte aligned")
        self._checked_range(ptr, size, what)
        return ptr

    def write_result(self, retptr: int, ok: bool, payload: bytes, what: str) -> None:
        """Lower ``result<list<u8>, string>``: allocate the payload, then fill the 12-byte area."""
        area = self.check_area(retptr, RESULT_AREA_SIZE, what)
        ptr, length = self.allocate(payload, what)
        self.write(area, _RESULT_AREA.pack(0 if ok else 1, ptr, length), what)

    def write_list(self, retptr: int, payload: bytes, what: str) -> None:
        """Lower ``list<u8>``: allocate the payload, then fill the 8-byte area."""
        area = self.check_area(retptr, LIST_AREA_SIZE, what)
        ptr, length = self.allocate(payload, what)
        self.write(area, _LIST_AREA.pack(ptr, length), what)

    def read_result(self, retptr: int, what: str, max_len: int) -> tuple[bool, bytes]:
        """Lift ``result<list<u8>, string>`` from a guest-owned return area.

        ``max_len`` caps the payload before it is copied, so a guest cannot make the host
        allocate its whole address space.
        """
        area = self.check_area(retptr, RESULT_AREA_SIZE, what)
        tag, ptr, length = _RESULT_AREA.unpack(self.read(area, RESULT_AREA_SIZE, what))
        if tag not in (0, 1):
            raise GuestFault(f"{what}: invalid result discriminant {tag}")
        if length > max_len:
            raise OversizedOutput(length)
        return tag == 0, self.read(ptr, length, f"{what} payload")


class OversizedOutput(Exception):
    """Raised by ``read_result`` before copying a payload larger than allowed."""

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length
