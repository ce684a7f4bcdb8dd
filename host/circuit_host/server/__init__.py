"""The host server: CRM webhooks in, circuits run, deploys managed, executions stored."""

from .app import create_app
from .settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
