"""Stored bundles: immutable, content-addressed per tenant, kept exactly as uploaded.

The platform stores what the deploy path validated (``bundles.read_bundle``, which needs
the runtime); it never loads a module itself.
"""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from collections import OrderedDict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..bundles.bundle import MAX_BUNDLE_BYTES, MODULE_NAME, Bundle
from ..bundles.manifest import Manifest, parse_manifest
from ..errors import Rejected
from .audit_log import AuditLog
from .database import PlatformDatabase
from .models import BundleInfo, Conflict, NotFound


class StoredBundles:
    """Bundles by tenant and sha256 (or name and version), with their parsed manifests cached."""

    def __init__(self, db: PlatformDatabase, audit: AuditLog, max_bundle_bytes: int = MAX_BUNDLE_BYTES) -> None:
        self._db = db
        self._audit = audit
        self.max_bundle_bytes = max_bundle_bytes
        self._lock = threading.Lock()
        self._manifests: OrderedDict[str, Manifest] = OrderedDict()
        self._wasm: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    def store_bundle(self, tenant_id: str, data: bytes, bundle: Bundle, actor: str) -> BundleInfo:
        """Store a bundle the deploy path validated (``bundle = read_bundle(data, ...)``).

        Storing the same bytes again returns the stored bundle. A different bundle under an existing
        name and version is a ``Conflict``: stored bundles are immutable, so a change needs a new version.
        """
        sha = hashlib.sha256(data).hexdigest()
        if bundle.sha256 != sha:
            raise Rejected("the validated bundle is not the one being stored")
        existing = self.get_bundle_by_sha(tenant_id, sha)
        if existing is not None:
            return existing
        b = self._db.tables.bundles
        info = BundleInfo(
            tenant_id, sha, bundle.name, bundle.version, len(data), bundle.manifest, self._db.now(), actor
        )
        try:
            with self._db.write() as conn:
                self._check_version_free(conn, info)
                conn.execute(
                    b.insert().values(
                        tenant_id=tenant_id,
                        sha256=sha,
                        name=info.name,
                        version=info.version,
                        size=info.size,
                        manifest=bundle.manifest_text,
                        data=data,
                        uploaded_at=info.uploaded_at,
                        uploaded_by=actor,
                    )
                )
                self._audit.append(conn, tenant_id, actor, "upload", None, info.name, None, info.version)
        except sa.exc.IntegrityError:  # a concurrent upload won the race
            again = self.get_bundle_by_sha(tenant_id, sha)
            if again is not None:
                return again
            raise Conflict(_version_taken(info)) from None
        self._remember_manifest(sha, bundle.manifest)
        return info

    def get_bundle(self, tenant_id: str, name: str, version: str) -> BundleInfo | None:
        b = self._db.tables.bundles
        return self._bundle_where(tenant_id, (b.c.name == name) & (b.c.version == version))

    def get_bundle_by_sha(self, tenant_id: str, sha256: str) -> BundleInfo | None:
        return self._bundle_where(tenant_id, self._db.tables.bundles.c.sha256 == sha256)

    def list_bundles(self, tenant_id: str, name: str | None = None) -> list[BundleInfo]:
        """The tenant's bundles, newest first."""
        b = self._db.tables.bundles
        query = self._bundle_select().where(b.c.tenant_id == tenant_id)
        if name is not None:
            query = query.where(b.c.name == name)
        with self._db.read() as conn:
            rows = conn.execute(query.order_by(b.c.uploaded_at.desc(), b.c.name, b.c.version)).all()
        return [self._bundle_info(r) for r in rows]

    def bundle_bytes(self, tenant_id: str, sha256: str) -> bytes | None:
        """The stored bundle file, exactly as uploaded."""
        b = self._db.tables.bundles
        with self._db.read() as conn:
            data = conn.execute(
                sa.select(b.c.data).where((b.c.tenant_id == tenant_id) & (b.c.sha256 == sha256))
            ).scalar()
        return None if data is None else bytes(data)

    def bundle_wasm(self, tenant_id: str, sha256: str) -> bytes:
        """The ``module.wasm`` of a stored bundle (cached; the bundle was validated before it was stored)."""
        key = (tenant_id, sha256)
        with self._lock:
            cached = self._wasm.get(key)
        if cached is not None:
            return cached
        data = self.bundle_bytes(tenant_id, sha256)
        if data is None:
            raise NotFound(f"bundle {sha256} does not exist")
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            wasm = archive.read(MODULE_NAME)
        with self._lock:
            self._wasm[key] = wasm
            while len(self._wasm) > 64:
                self._wasm.popitem(last=False)
        return wasm

    def manifest(self, sha256: str, text: str) -> Manifest:
        """The parsed manifest of a stored bundle, from its text (parsed once per bundle)."""
        with self._lock:
            cached = self._manifests.get(sha256)
        if cached is not None:
            return cached
        manifest = parse_manifest(text)
        self._remember_manifest(sha256, manifest)
        return manifest

    def _check_version_free(self, conn: Connection, info: BundleInfo) -> None:
        b = self._db.tables.bundles
        taken = conn.execute(
            sa.select(b.c.sha256).where(
                (b.c.tenant_id == info.tenant_id) & (b.c.name == info.name) & (b.c.version == info.version)
            )
        ).scalar()
        if taken is not None and taken != info.sha256:
            raise Conflict(_version_taken(info))

    def _bundle_select(self) -> sa.Select[Any]:
        b = self._db.tables.bundles
        return sa.select(
            b.c.tenant_id,
            b.c.sha256,
            b.c.name,
            b.c.version,
            b.c.size,
            b.c.manifest,
            b.c.uploaded_at,
            b.c.uploaded_by,
        )

    def _bundle_where(self, tenant_id: str, condition: sa.ColumnElement[bool]) -> BundleInfo | None:
        b = self._db.tables.bundles
        with self._db.read() as conn:
            row = conn.execute(self._bundle_select().where((b.c.tenant_id == tenant_id) & condition)).first()
        return None if row is None else self._bundle_info(row)

    def _bundle_info(self, row: Any) -> BundleInfo:
        manifest = self.manifest(row.sha256, row.manifest)
        return BundleInfo(
            row.tenant_id, row.sha256, row.name, row.version, row.size, manifest, row.uploaded_at, row.uploaded_by
        )

    def _remember_manifest(self, sha256: str, manifest: Manifest) -> None:
        with self._lock:
            self._manifests[sha256] = manifest
            while len(self._manifests) > 4096:
                self._manifests.popitem(last=False)


def _version_taken(info: BundleInfo) -> str:
    return (
        f"bundle {info.name} {info.version} already exists with different content; "
        "stored bundles are immutable, so bump the version"
    )
