"""Bundles: the ``circuit.toml`` manifest and the ``.circuit`` file that carries it with its module."""

from .bundle import (
    BUNDLE_SUFFIX,
    MAX_BUNDLE_BYTES,
    MAX_MANIFEST_BYTES,
    Bundle,
    bundle_filename,
    pack_bundle,
    pack_bytes,
    read_bundle,
)
from .manifest import (
    Callouts,
    CircuitInfo,
    Credentials,
    Manifest,
    TriggerSpec,
    manifest_from_document,
    parse_manifest,
    read_manifest,
)

__all__ = [
    "BUNDLE_SUFFIX",
    "MAX_BUNDLE_BYTES",
    "MAX_MANIFEST_BYTES",
    "Bundle",
    "Callouts",
    "CircuitInfo",
    "Credentials",
    "Manifest",
    "TriggerSpec",
    "bundle_filename",
    "manifest_from_document",
    "pack_bundle",
    "pack_bytes",
    "parse_manifest",
    "read_bundle",
    "read_manifest",
]
