"""Alembic's entry point for every schema here; ``circuit_host.migrations.upgrade`` supplies the connection."""

from alembic import context

from circuit_host.migrations import run_in_context

run_in_context(context)
