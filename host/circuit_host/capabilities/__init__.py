"""Host capabilities: one module per ABI interface.

Each is a set of plain functions of ``(context, arguments)``: decode the guest's request, charge
the governor *first*, call the connector through the execution's context, encode the reply. They
never see wasmtime; ``abi/host_functions.py`` is the table that binds them to the ABI.
"""
