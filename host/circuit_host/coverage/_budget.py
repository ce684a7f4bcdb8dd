"""What one parse of untrusted bytes may spend: entries proportional to the input (capped) and wall time."""

from __future__ import annotations

import time

from ._leb import DecodeError

MAX_ENTRIES = 20_000_000  # instructions, line rows and file entries of one parse, however large the input
PARSE_SECONDS = 60.0


class ParseBudget:
    """Charged once per entry a parser creates; refuses with `DecodeError` instead of growing or hanging."""

    def __init__(self, what: str, input_bytes: int, seconds: float = PARSE_SECONDS) -> None:
        self.what = what
        self.limit = min(MAX_ENTRIES, input_bytes + 16)  # every entry costs at least one byte of input
        self.deadline = time.monotonic() + seconds
        self.used = 0

    def charge(self, entries: int = 1) -> None:
        self.used += entries
        if self.used > self.limit:
            raise DecodeError(f"{self.what}: more than {self.limit} entries for {self.limit - 16} bytes of input")
        if not self.used & 0x3FF and time.monotonic() > self.deadline:
            raise DecodeError(f"{self.what}: parsing took longer than its deadline; refused")
