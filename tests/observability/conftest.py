"""The server suite's Virtual LPR bundles (built once per session) for the deploy metrics."""

from tests.server.conftest import vlpr_bundles

__all__ = ["vlpr_bundles"]
