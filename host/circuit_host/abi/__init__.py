"""The ABI layer: the only code that reads or writes guest memory.

``signatures`` is the Python mirror of ``abi/circuit.wit`` lowered through the canonical
ABI; ``validation`` checks a module against it at load time; ``guest_memory`` gives
bounds-checked access to an instance's memory; ``lowering`` turns host functions that
speak Python values into core-wasm imports; ``component_binding`` does the same for components.
"""
