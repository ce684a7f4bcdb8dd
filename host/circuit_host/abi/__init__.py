"""The ABI layer: the only code that reads or writes guest memory.

``host_functions`` is the one table of host functions (described with the types in
``signatures``); ``validation`` checks a core module against it at load time; ``guest_memory``
gives bounds-checked access to an instance's memory; ``lowering`` links the table as core-wasm
imports and ``component_binding`` as Component Model functions; ``codec`` is msgpack at the
boundary; ``_wasmtime_private`` fences every use of wasmtime-py's private API.
"""
