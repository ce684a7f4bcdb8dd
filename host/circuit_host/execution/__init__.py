"""Executions: the per-execution context, the governor and its limits, the debug log, the event
schema, and the lifecycle that commits or rolls back what a circuit wrote."""
