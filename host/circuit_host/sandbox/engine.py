"""The shared wasmtime engine, its epoch ticker, and the on-disk cache of compiled modules.

One engine per host process: fuel metering and epoch interruption are engine settings,
and compiled code is only valid for the engine configuration it was compiled with, so
the cache key includes the wasmtime version and those settings.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import ClassVar

import structlog
import wasmtime
import wasmtime.component as wc

EPOCH_TICK_MS = 10
MAX_TABLE_ELEMENTS = 100_000  # per store: a table bomb is refused, not allocated
WASMTIME_VERSION = version("wasmtime")
# Everything that changes generated code; part of the cache key.
ENGINE_SETTINGS = "consume_fuel=1;epoch_interruption=1;threads=0;memory64=0;gc=0;multi_memory=1"

log = structlog.get_logger("circuit.engine")


def make_engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    config.wasm_threads = False
    config.shared_memory = False
    config.wasm_memory64 = False
    config.wasm_gc = False
    config.wasm_multi_memory = True  # the coverage instrumenter adds a counter memory
    return wasmtime.Engine(config)


class EpochTicker:
    """Advances the engine's epoch every ``EPOCH_TICK_MS`` so store deadlines fire on time.

    Wasm runs with the GIL released, so this thread keeps ticking while a guest spins.
    """

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="circuit-epoch", daemon=True)
        self._thread.start()
        # A ticker still running while the interpreter tears the engine down would crash it.
        atexit.register(self.close)

    def _run(self) -> None:
        while not self._stop.wait(EPOCH_TICK_MS / 1000):
            self._engine.increment_epoch()

    def close(self) -> None:
        """Stop ticking; idempotent."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        atexit.unregister(self.close)


def deadline_ticks(timeout_ms: int) -> int:
    """Epoch ticks for a deadline; one extra tick because the first may come at once."""
    return -(-timeout_ms // EPOCH_TICK_MS) + 1


class ModuleCache:
    """Compiled code on disk, core modules and components alike, keyed by wasm sha256 + wasmtime
    version + engine settings.

    Deserializing compiled code runs it as is, so every entry is authenticated: it is stored as an
    HMAC-SHA256 (over the entry's kind, its source's sha256, the engine settings and the artifact)
    followed by the artifact, under a host key (``cache.key`` in the directory, made 0600 on first
    use, or one the caller passes). An entry whose MAC does not match (another source's artifact put
    in its place, a corrupt or foreign file) is discarded and its source compiled again.
    """

    SUFFIXES: ClassVar[dict[str, str]] = {"module": ".cwasm", "component": ".component.cwasm"}
    KEY_FILE = "cache.key"
    MAC_BYTES = 32

    def __init__(self, directory: Path | None, key: bytes | None = None) -> None:
        self.directory = directory
        self._key = key
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            if self._key is None:
                self._key = _host_key(directory / self.KEY_FILE)

    @staticmethod
    def key(wasm_sha256: str) -> str:
        settings = hashlib.sha256(f"{WASMTIME_VERSION};{ENGINE_SETTINGS}".encode()).hexdigest()[:16]
        return f"{wasm_sha256}-{settings}"

    def _path(self, wasm_sha256: str, kind: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / f"{self.key(wasm_sha256)}{self.SUFFIXES[kind]}"

    def _mac(self, kind: str, wasm_sha256: str, artifact: bytes) -> bytes:
        assert self._key is not None
        mac = hmac.new(self._key, f"{kind};{self.key(wasm_sha256)};".encode(), hashlib.sha256)
        mac.update(artifact)
        return mac.digest()

    def load(self, engine: wasmtime.Engine, wasm_sha256: str) -> wasmtime.Module | None:
        loaded = self._load(wasm_sha256, "module", lambda artifact: wasmtime.Module.deserialize(engine, artifact))
        return loaded if isinstance(loaded, wasmtime.Module) else None

    def load_component(self, engine: wasmtime.Engine, wasm_sha256: str) -> wc.Component | None:
        loaded = self._load(wasm_sha256, "component", lambda artifact: wc.Component.deserialize(engine, artifact))
        return loaded if isinstance(loaded, wc.Component) else None

    def _load(self, wasm_sha256: str, kind: str, deserialize: Callable[[bytes], object]) -> object | None:
        path = self._path(wasm_sha256, kind)
        if path is None or not path.exists():
            return None
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.warning("cannot read compiled code", path=str(path), error=exc.strerror)
            return None
        mac, artifact = data[: self.MAC_BYTES], data[self.MAC_BYTES :]
        if not hmac.compare_digest(mac, self._mac(kind, wasm_sha256, artifact)):
            log.warning("discarding compiled code that fails authentication", path=str(path))
            path.unlink(missing_ok=True)
            return None
        try:
            return deserialize(artifact)
        except wasmtime.WasmtimeError as exc:
            log.warning("discarding unreadable compiled code", path=str(path), error=str(exc))
            path.unlink(missing_ok=True)
            return None

    def store(self, wasm_sha256: str, compiled: wasmtime.Module | wc.Component) -> None:
        kind = "component" if isinstance(compiled, wc.Component) else "module"
        path = self._path(wasm_sha256, kind)
        if path is None:
            return
        artifact = bytes(compiled.serialize())
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(self._mac(kind, wasm_sha256, artifact) + artifact)
        os.replace(tmp, path)  # atomic: concurrent writers of the same key are harmless


def _host_key(path: Path) -> bytes:
    """The cache's key: read, or made once (0600; the first of concurrent makers wins)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it right now
            key = path.read_bytes()
            if len(key) >= 32:
                return key
            time.sleep(0.01)
        raise RuntimeError(f"the module cache key {path} is damaged; delete it and the cache") from None
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key
