"""The deploy path's first step: a bundle is validated with the runtime before the platform stores it.

The platform keeps bytes and metadata; only here is a module loaded (and so compiled and
checked against the tenant's limit ceiling) on its way in.
"""

from __future__ import annotations

import hashlib

from ..bundles import read_bundle
from ..platform import BundleInfo, Platform
from ..sandbox.runtime import Runtime


def upload_bundle(platform: Platform, runtime: Runtime, tenant_id: str, data: bytes, actor: str) -> BundleInfo:
    """Validate and store a bundle; uploading the same bytes again returns the stored one unchecked.

    A different bundle under an existing name and version is a ``Conflict``; a bundle that
    fails validation is ``Rejected``; an unknown tenant is ``NotFound``.
    """
    existing = platform.bundles.get_bundle_by_sha(tenant_id, hashlib.sha256(data).hexdigest())
    if existing is not None:
        return existing
    ceiling = platform.tenants.get_settings(tenant_id).max_limits
    bundle = read_bundle(data, runtime, platform.bundles.max_bundle_bytes, ceiling)
    return platform.bundles.store_bundle(tenant_id, data, bundle, actor)
