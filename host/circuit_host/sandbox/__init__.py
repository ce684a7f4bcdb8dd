"""The sandbox: the wasmtime engine, loading core modules and components, and running one guest call.

Everything that arms a store (fuel, deadline, memory cap) and classifies how a guest call ended
lives here; nothing here knows about executions beyond the ``ExecutionContext`` it is handed.
"""
