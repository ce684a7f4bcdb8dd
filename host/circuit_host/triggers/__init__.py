"""Trigger circuits on DML: the registry of who runs on what, and the firing itself."""

from .firing import MAX_TRIGGER_DEPTH, TRIGGER_CHUNK_SIZE, TriggerFiring
from .registry import TriggerBinding, TriggerRegistry

__all__ = ["MAX_TRIGGER_DEPTH", "TRIGGER_CHUNK_SIZE", "TriggerBinding", "TriggerFiring", "TriggerRegistry"]
