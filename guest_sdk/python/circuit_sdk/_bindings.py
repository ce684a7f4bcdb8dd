"""Access to the generated WIT bindings (present only inside a built component).

Outside a component (plain pytest), ``install`` lets a test harness supply an object with
the same four interfaces, so the SDK runs natively against an in-process binding.
"""

from __future__ import annotations

from typing import Any

_override: Any = None
_imports: dict[str, Any] = {}


def install(binding: Any | None) -> None:
    """Use ``binding`` (attributes ``records``, ``http``, ``log``, ``limits`` and, for tests,
    ``testing``) instead of the component's imports; ``None`` removes it."""
    global _override
    _override = binding


def interface(name: str) -> Any:
    if _override is not None:
        return getattr(_override, name)
    return _imports[name]


def has_interface(name: str) -> bool:
    """Whether the component (or the native binding) has ``name``: ``jobs`` only in 1.1.0 builds."""
    return hasattr(_override, name) if _override is not None else name in _imports


def load_component_imports() -> None:
    """Import the generated bindings now, at build time: with WASI stubbed out, a module
    first imported while handling an event would need the filesystem, and trap."""
    from wit_world.imports import http, limits, log, records

    _imports.update(records=records, http=http, log=log, limits=limits)
    try:  # ABI 1.1.0: present only when the circuit was built against that world (it uses jobs)
        from wit_world.imports import jobs
    except ImportError:
        return
    _imports["jobs"] = jobs


def load_testing_import() -> None:
    """The ``testing`` interface, present only in a test component (world ``circuit-test``)."""
    from wit_world.imports import testing

    _imports["testing"] = testing


def unwrap(call: Any, *args: Any) -> tuple[bool, Any]:
    """Call an import returning ``result<_, string>``: (True, value) or (False, message)."""
    try:
        return True, call(*args)
    except Exception as exc:  # componentize_py_types.Err carries the err payload in .value
        value = getattr(exc, "value", None)
        if type(exc).__name__ == "Err" and isinstance(value, str):
            return False, value
        raise
