"""The platform store: tenants, API keys, webhook tokens, bundles, deployments, executions.

One ``Platform`` per process, over SQLAlchemy Core on SQLite or PostgreSQL. Every method
takes the ``tenant_id`` it acts for and every query filters on it, so no call can read or
change another tenant's rows. Writes that must not interleave (deployment changes) lock the
tenant environment's generation row (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN
IMMEDIATE`` on SQLite); uniqueness races (bundle versions, webhook ids) are settled by
unique constraints. The generation counter is bumped by every deployment change, so
``active_circuits`` costs one primary-key read per call and another process's rollback is
seen on the next call.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import secrets
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from ..bundles.bundle import MAX_BUNDLE_BYTES, MODULE_NAME, read_bundle
from ..bundles.manifest import Manifest, parse_manifest
from ..errors import Rejected
from ..sandbox.runtime import Runtime
from .models import (
    ENVIRONMENTS,
    SCOPES,
    ActiveCircuit,
    ApiKey,
    AuditEntry,
    BundleInfo,
    Conflict,
    ExecutionEntry,
    GateRun,
    NotFound,
    Tenant,
)
from .settings import TenantSettings
from .tables import Tables, build_tables

TENANT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
KEY_PREFIX = "cs_"
MAX_LIST = 1000
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_LAST_USED_EVERY = timedelta(seconds=60)
_MAX_WEBHOOK_ID = 128
_IN_CHUNK = 500


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Platform:
    """The control-plane store; see the module docstring. Close it (or use ``with``) when done."""

    def __init__(
        self,
        url: str | Path,
        *,
        prefix: str = "cs_",
        busy_timeout: float = 30.0,
        max_bundle_bytes: int = MAX_BUNDLE_BYTES,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if not re.match(r"^[a-z][a-z0-9_]{0,20}$", prefix):
            raise Rejected(f"table prefix {prefix!r} must be lower case letters, digits and '_'")
        self.engine = _engine(url, busy_timeout)
        self.dialect = self.engine.dialect.name
        self.tables: Tables = build_tables(prefix)
        self.max_bundle_bytes = max_bundle_bytes
        self._clock = clock
        self._closed = False
        self._lock = threading.Lock()
        self._active: dict[tuple[str, str], tuple[int, tuple[ActiveCircuit, ...]]] = {}
        self._manifests: OrderedDict[str, Manifest] = OrderedDict()
        self._wasm: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._parsed_settings: OrderedDict[str, TenantSettings] = OrderedDict()
        try:
            self._create_tables(prefix)
        except BaseException:
            self.engine.dispose()
            raise

    # --- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Release the connection pool. Idempotent."""
        if not self._closed:
            self._closed = True
            self.engine.dispose()

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def drop_tables(self) -> None:
        """Drop every platform table (tests and teardown of throw-away databases only)."""
        self.tables.metadata.drop_all(self.engine)

    def _create_tables(self, prefix: str) -> None:
        with self._write() as conn:
            if self.dialect == "postgresql":
                key = int.from_bytes(
                    hashlib.sha256(f"circuit-platform:{prefix}".encode()).digest()[:8], "big", signed=True
                )
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            self.tables.metadata.create_all(conn)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A read-write transaction; on SQLite it holds the write lock from the start."""
        if self._closed:
            raise RuntimeError("platform store is closed")
        with self.engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        if self._closed:
            raise RuntimeError("platform store is closed")
        with self.engine.connect() as conn:
            yield conn

    def _now(self) -> datetime:
        return self._clock()

    # --- tenants ---------------------------------------------------------------------------

    def create_tenant(self, name: str, tenant_id: str | None = None) -> Tenant:
        """A new tenant with default settings; ``tenant_id`` defaults to a slug of the name plus random letters."""
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise Rejected("tenant name must be a non-empty string of at most 200 characters")
        if tenant_id is None:
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:24].strip("-") or "tenant"
            tenant_id = f"{slug}-{secrets.token_hex(3)}"
        elif not TENANT_ID_PATTERN.match(tenant_id):
            raise Rejected(f"tenant id {tenant_id!r} must be lower case letters, digits and '-' (at most 64)")
        tenant = Tenant(tenant_id, name.strip(), self._now(), TenantSettings())
        t = self.tables.tenants
        try:
            with self._write() as conn:
                conn.execute(
                    t.insert().values(
                        id=tenant.id,
                        name=tenant.name,
                        settings=json.dumps(TenantSettings().to_storage()),
                        created_at=tenant.created_at,
                    )
                )
        except sa.exc.IntegrityError:
            raise Conflict(f"tenant {tenant_id!r} already exists") from None
        return tenant

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        t = self.tables.tenants
        with self._read() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == tenant_id)).first()
        return None if row is None else self._tenant(row)

    def list_tenants(self) -> list[Tenant]:
        t = self.tables.tenants
        with self._read() as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.created_at, t.c.id)).all()
        return [self._tenant(r) for r in rows]

    def get_settings(self, tenant_id: str) -> TenantSettings:
        tenant = self.get_tenant(tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id!r} does not exist")
        return tenant.settings

    def _tenant(self, row: Any) -> Tenant:
        return Tenant(row.id, row.name, row.created_at, self._settings(row.settings))

    def _settings(self, raw: str) -> TenantSettings:
        """Parsed settings, cached by their stored JSON: validating keys on every request is wasted work."""
        with self._lock:
            cached = self._parsed_settings.get(raw)
        if cached is None:
            cached = TenantSettings.model_validate(json.loads(raw))
            with self._lock:
                self._parsed_settings[raw] = cached
                while len(self._parsed_settings) > 1024:
                    self._parsed_settings.popitem(last=False)
        return cached

    def update_settings(self, tenant_id: str, changes: Mapping[str, Any] | TenantSettings) -> TenantSettings:
        """Apply a partial update (or replace with a ``TenantSettings``); invalid values are rejected."""
        t = self.tables.tenants
        with self._write() as conn:
            raw = conn.execute(sa.select(t.c.settings).where(t.c.id == tenant_id).with_for_update()).scalar()
            if raw is None:
                raise NotFound(f"tenant {tenant_id!r} does not exist")
            if isinstance(changes, TenantSettings):
                settings = changes
            else:
                merged = {**json.loads(raw), **_plain(changes)}
                settings = TenantSettings.validated(merged)
            conn.execute(t.update().where(t.c.id == tenant_id).values(settings=json.dumps(settings.to_storage())))
        return settings

    def _require_tenant(self, tenant_id: str) -> None:
        if self.get_tenant(tenant_id) is None:
            raise NotFound(f"tenant {tenant_id!r} does not exist")

    # --- API keys --------------------------------------------------------------------------

    def create_api_key(self, tenant_id: str, scopes: Iterable[str], label: str = "") -> tuple[ApiKey, str]:
        """A new key and its plaintext ``cs_<keyid>_<secret>``, shown once: only a hash is stored."""
        self._require_tenant(tenant_id)
        wanted = frozenset(scopes)
        if not wanted or not wanted <= set(SCOPES):
            raise Rejected(f"scopes must be a non-empty subset of {', '.join(SCOPES)}; got {sorted(wanted)}")
        if len(label) > 200:
            raise Rejected("label must be at most 200 characters")
        key = ApiKey(secrets.token_hex(8), tenant_id, label, wanted, self._now())
        secret = secrets.token_urlsafe(32)
        with self._write() as conn:
            conn.execute(
                self.tables.api_keys.insert().values(
                    id=key.id,
                    tenant_id=tenant_id,
                    label=label,
                    scopes=",".join(sorted(wanted)),
                    secret_sha256=_sha256(secret),
                    created_at=key.created_at,
                )
            )
        return key, f"{KEY_PREFIX}{key.id}_{secret}"

    def authenticate(self, plaintext: str) -> ApiKey | None:
        """The key for a presented plaintext, or None (unknown, malformed, wrong secret or revoked)."""
        if not isinstance(plaintext, str) or not plaintext.startswith(KEY_PREFIX):
            return None
        parts = plaintext[len(KEY_PREFIX) :].split("_", 1)
        if len(parts) != 2 or not _KEY_ID.match(parts[0]) or not parts[1]:
            return None
        k = self.tables.api_keys
        with self._read() as conn:
            row = conn.execute(sa.select(k).where(k.c.id == parts[0])).first()
        # The secret is 256 random bits, so a plain sha256 is enough; compare in constant time anyway.
        if row is None or not hmac.compare_digest(row.secret_sha256, _sha256(parts[1])):
            return None
        if row.revoked_at is not None:
            return None
        key = _api_key(row)
        now = self._now()
        if key.last_used_at is None or now - key.last_used_at > _LAST_USED_EVERY:
            with self._read() as conn:
                conn.execute(k.update().where(k.c.id == key.id).values(last_used_at=now))
            key = replace(key, last_used_at=now)
        return key

    def list_api_keys(self, tenant_id: str) -> list[ApiKey]:
        k = self.tables.api_keys
        with self._read() as conn:
            rows = conn.execute(sa.select(k).where(k.c.tenant_id == tenant_id).order_by(k.c.created_at, k.c.id))
            return [_api_key(r) for r in rows]

    def revoke_api_key(self, tenant_id: str, key_id: str) -> ApiKey:
        """Revoke a key of this tenant; revoking twice keeps the first revocation time."""
        k = self.tables.api_keys
        with self._write() as conn:
            mine = (k.c.id == key_id) & (k.c.tenant_id == tenant_id)
            conn.execute(k.update().where(mine & k.c.revoked_at.is_(None)).values(revoked_at=self._now()))
            row = conn.execute(sa.select(k).where(mine)).first()
        if row is None:
            raise NotFound(f"API key {key_id!r} does not exist")
        return _api_key(row)

    # --- environments and webhook tokens ----------------------------------------------------

    def webhook_token(self, tenant_id: str, env: str) -> str:
        """The tenant environment's webhook URL token, created on first use."""
        _check_env(env)
        w = self.tables.webhook_tokens
        mine = (w.c.tenant_id == tenant_id) & (w.c.env == env)
        with self._read() as conn:
            token = conn.execute(sa.select(w.c.token).where(mine)).scalar()
        if token is not None:
            return str(token)
        self._require_tenant(tenant_id)
        with self._write() as conn:
            values = {"tenant_id": tenant_id, "env": env, "token": secrets.token_urlsafe(32), "created_at": self._now()}
            conn.execute(self._insert_ignore(w, values, ["tenant_id", "env"]))
            return str(conn.execute(sa.select(w.c.token).where(mine)).scalar_one())

    def rotate_webhook_token(self, tenant_id: str, env: str) -> str:
        """Replace the token: the old URL stops working at once."""
        _check_env(env)
        self._require_tenant(tenant_id)
        w = self.tables.webhook_tokens
        values = {"tenant_id": tenant_id, "env": env, "token": secrets.token_urlsafe(32), "created_at": self._now()}
        with self._write() as conn:
            conn.execute(self._upsert(w, values, ["tenant_id", "env"]))
        return str(values["token"])

    def resolve_webhook_token(self, token: str) -> tuple[str, str] | None:
        """``(tenant_id, env)`` for a webhook URL token, or None."""
        if not isinstance(token, str) or not 20 <= len(token) <= 100:
            return None
        w = self.tables.webhook_tokens
        with self._read() as conn:
            row = conn.execute(sa.select(w.c.tenant_id, w.c.env, w.c.token).where(w.c.token == token)).first()
        if row is None or not hmac.compare_digest(row.token, token):
            return None
        return str(row.tenant_id), str(row.env)

    # --- bundles ---------------------------------------------------------------------------

    def store_bundle(self, tenant_id: str, data: bytes, runtime: Runtime, actor: str) -> BundleInfo:
        """Validate and store a bundle; storing the same bytes again returns the stored one.

        A different bundle under an existing name and version is a ``Conflict``: stored
        bundles are immutable, so a change needs a new version.
        """
        sha = hashlib.sha256(data).hexdigest()
        existing = self._bundle_where(tenant_id, self.tables.bundles.c.sha256 == sha)
        if existing is not None:
            return existing
        settings = self.get_settings(tenant_id)
        bundle = read_bundle(data, runtime, self.max_bundle_bytes, settings.max_limits)
        b = self.tables.bundles
        info = BundleInfo(tenant_id, sha, bundle.name, bundle.version, len(data), bundle.manifest, self._now(), actor)
        try:
            with self._write() as conn:
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
                self._audit(conn, tenant_id, actor, "upload", None, info.name, None, info.version)
        except sa.exc.IntegrityError:  # a concurrent upload won the race
            again = self._bundle_where(tenant_id, b.c.sha256 == sha)
            if again is not None:
                return again
            raise Conflict(_version_taken(info)) from None
        self._remember_manifest(sha, bundle.manifest)
        return info

    def _check_version_free(self, conn: Connection, info: BundleInfo) -> None:
        b = self.tables.bundles
        taken = conn.execute(
            sa.select(b.c.sha256).where(
                (b.c.tenant_id == info.tenant_id) & (b.c.name == info.name) & (b.c.version == info.version)
            )
        ).scalar()
        if taken is not None and taken != info.sha256:
            raise Conflict(_version_taken(info))

    def get_bundle(self, tenant_id: str, name: str, version: str) -> BundleInfo | None:
        b = self.tables.bundles
        return self._bundle_where(tenant_id, (b.c.name == name) & (b.c.version == version))

    def get_bundle_by_sha(self, tenant_id: str, sha256: str) -> BundleInfo | None:
        return self._bundle_where(tenant_id, self.tables.bundles.c.sha256 == sha256)

    def list_bundles(self, tenant_id: str, name: str | None = None) -> list[BundleInfo]:
        """The tenant's bundles, newest first."""
        b = self.tables.bundles
        query = self._bundle_select().where(b.c.tenant_id == tenant_id)
        if name is not None:
            query = query.where(b.c.name == name)
        with self._read() as conn:
            rows = conn.execute(query.order_by(b.c.uploaded_at.desc(), b.c.name, b.c.version)).all()
        return [self._bundle_info(r) for r in rows]

    def bundle_bytes(self, tenant_id: str, sha256: str) -> bytes | None:
        """The stored bundle file, exactly as uploaded."""
        b = self.tables.bundles
        with self._read() as conn:
            data = conn.execute(
                sa.select(b.c.data).where((b.c.tenant_id == tenant_id) & (b.c.sha256 == sha256))
            ).scalar()
        return None if data is None else bytes(data)

    def bundle_wasm(self, tenant_id: str, sha256: str) -> bytes:
        """The ``module.wasm`` of a stored bundle (cached; the bundle was validated on upload)."""
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

    def _bundle_select(self) -> sa.Select[Any]:
        b = self.tables.bundles
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
        b = self.tables.bundles
        with self._read() as conn:
            row = conn.execute(self._bundle_select().where((b.c.tenant_id == tenant_id) & condition)).first()
        return None if row is None else self._bundle_info(row)

    def _bundle_info(self, row: Any) -> BundleInfo:
        manifest = self._manifest(row.sha256, row.manifest)
        return BundleInfo(
            row.tenant_id, row.sha256, row.name, row.version, row.size, manifest, row.uploaded_at, row.uploaded_by
        )

    def _manifest(self, sha256: str, text: str) -> Manifest:
        with self._lock:
            cached = self._manifests.get(sha256)
        if cached is not None:
            return cached
        manifest = parse_manifest(text)
        self._remember_manifest(sha256, manifest)
        return manifest

    def _remember_manifest(self, sha256: str, manifest: Manifest) -> None:
        with self._lock:
            self._manifests[sha256] = manifest
            while len(self._manifests) > 4096:
                self._manifests.popitem(last=False)

    # --- deployments -------------------------------------------------------------------------

    def deploy(self, tenant_id: str, env: str, name: str, version: str, actor: str) -> AuditEntry | None:
        """Make a stored version the active one in ``env``; None if it already was."""
        _check_env(env)
        bundle = self.get_bundle(tenant_id, name, version)
        if bundle is None:
            raise NotFound(f"bundle {name} {version} does not exist")
        bundle.manifest.limits_profile(self.get_settings(tenant_id).max_limits)
        with self._write() as conn:
            self._lock_environment(conn, tenant_id, env)
            entry = self._activate(conn, bundle, env, actor, "deploy")
            if entry is not None:
                self._bump(conn, tenant_id, env)
            return entry

    def promote(
        self, tenant_id: str, from_env: str, to_env: str, actor: str, name: str | None = None
    ) -> list[AuditEntry]:
        """Copy the versions active in ``from_env`` (all, or circuit ``name``) into ``to_env``."""
        _check_env(from_env)
        _check_env(to_env)
        if from_env == to_env:
            raise Rejected("promote needs two different environments")
        sources = [c for c in self.active_circuits(tenant_id, from_env) if name is None or c.name == name]
        if not sources:
            what = f"circuit {name}" if name is not None else "no circuit"
            raise NotFound(f"{what} is not active in {from_env}" if name else f"no circuit is active in {from_env}")
        ceiling = self.get_settings(tenant_id).max_limits
        bundles = []
        for circuit in sources:
            circuit.manifest.limits_profile(ceiling)
            bundle = self.get_bundle_by_sha(tenant_id, circuit.sha256)
            if bundle is None:  # pragma: no cover - bundles are never deleted
                raise NotFound(f"bundle {circuit.sha256} does not exist")
            bundles.append(bundle)
        entries: list[AuditEntry] = []
        with self._write() as conn:
            self._lock_environment(conn, tenant_id, to_env)
            for bundle in bundles:
                entry = self._activate(conn, bundle, to_env, actor, "promote")
                if entry is not None:
                    entries.append(entry)
            if entries:
                self._bump(conn, tenant_id, to_env)
        return entries

    def rollback(self, tenant_id: str, env: str, name: str, actor: str, to_version: str | None = None) -> AuditEntry:
        """Go back to ``to_version``, by default to the version active before the current one.

        Walking back repeatedly retraces the deploy history (v3 -> v2 -> v1), because the
        previous version is taken from the deploy or promotion that activated the current one.
        """
        _check_env(env)
        d, a = self.tables.deployments, self.tables.audit
        with self._write() as conn:
            self._lock_environment(conn, tenant_id, env)
            current = conn.execute(
                sa.select(d.c.version).where((d.c.tenant_id == tenant_id) & (d.c.env == env) & (d.c.name == name))
            ).scalar()
            if current is None:
                raise NotFound(f"circuit {name} is not active in {env}")
            if to_version is None:
                to_version = conn.execute(
                    sa.select(a.c.from_version)
                    .where(
                        (a.c.tenant_id == tenant_id)
                        & (a.c.env == env)
                        & (a.c.circuit == name)
                        & a.c.action.in_(("deploy", "promote"))
                        & (a.c.to_version == current)
                    )
                    .order_by(a.c.id.desc())
                    .limit(1)
                ).scalar()
                if to_version is None:
                    raise Conflict(f"no version of {name} was active in {env} before {current}; pass to_version")
            if to_version == current:
                raise Conflict(f"{name} {current} is already active in {env}")
            bundle = self.get_bundle(tenant_id, name, to_version)
            if bundle is None:
                raise NotFound(f"bundle {name} {to_version} does not exist")
            entry = self._activate(conn, bundle, env, actor, "rollback")
            assert entry is not None
            self._bump(conn, tenant_id, env)
            return entry

    def undeploy(self, tenant_id: str, env: str, name: str, actor: str) -> AuditEntry:
        """Deactivate a circuit in ``env``: no version of it runs there any more."""
        _check_env(env)
        d = self.tables.deployments
        mine = (d.c.tenant_id == tenant_id) & (d.c.env == env) & (d.c.name == name)
        with self._write() as conn:
            self._lock_environment(conn, tenant_id, env)
            current = conn.execute(sa.select(d.c.version).where(mine)).scalar()
            if current is None:
                raise NotFound(f"circuit {name} is not active in {env}")
            conn.execute(d.delete().where(mine))
            self._bump(conn, tenant_id, env)
            return self._audit(conn, tenant_id, actor, "undeploy", env, name, current, None)

    def generation(self, tenant_id: str, env: str) -> int:
        """A counter bumped by every deployment change in the tenant environment (for caches)."""
        _check_env(env)
        g = self.tables.generations
        with self._read() as conn:
            value = conn.execute(
                sa.select(g.c.generation).where((g.c.tenant_id == tenant_id) & (g.c.env == env))
            ).scalar()
        return int(value or 0)

    def active_circuits(self, tenant_id: str, env: str) -> list[ActiveCircuit]:
        """The circuits active in a tenant environment, by name: one primary-key read when unchanged."""
        _check_env(env)
        g, d, b = self.tables.generations, self.tables.deployments, self.tables.bundles
        with self._read() as conn:
            generation = conn.execute(
                sa.select(g.c.generation).where((g.c.tenant_id == tenant_id) & (g.c.env == env))
            ).scalar()
            generation = int(generation or 0)
            with self._lock:
                cached = self._active.get((tenant_id, env))
            if cached is not None and cached[0] == generation:
                return list(cached[1])
            # Read after the generation: a change in between is picked up by the next call.
            rows = conn.execute(
                sa.select(d.c.name, d.c.version, d.c.sha256, d.c.deployed_at, d.c.deployed_by, b.c.manifest)
                .join(b, (b.c.tenant_id == d.c.tenant_id) & (b.c.sha256 == d.c.sha256))
                .where((d.c.tenant_id == tenant_id) & (d.c.env == env))
                .order_by(d.c.name)
            ).all()
        active = tuple(
            ActiveCircuit(
                r.name, r.version, r.sha256, self._manifest(r.sha256, r.manifest), r.deployed_at, r.deployed_by
            )
            for r in rows
        )
        with self._lock:
            self._active[(tenant_id, env)] = (generation, active)
        return list(active)

    def audit_log(
        self, tenant_id: str, limit: int = 100, env: str | None = None, circuit: str | None = None
    ) -> list[AuditEntry]:
        """Uploads, deploys, promotions, rollbacks and undeploys, newest first."""
        a = self.tables.audit
        query = sa.select(a).where(a.c.tenant_id == tenant_id)
        if env is not None:
            query = query.where(a.c.env == env)
        if circuit is not None:
            query = query.where(a.c.circuit == circuit)
        with self._read() as conn:
            rows = conn.execute(query.order_by(a.c.id.desc()).limit(_clamp(limit))).all()
        return [_audit_entry(r) for r in rows]

    def record_gate_run(
        self,
        tenant_id: str,
        env: str,
        circuit: str,
        version: str,
        actor: str,
        passed: bool,
        coverage: float | None,
        detail: str,
        audit_id: int | None = None,
    ) -> GateRun:
        """Keep the deploy gate's verdict, tied to the audit entry of the deploy it let through."""
        _check_env(env)
        run = GateRun(0, tenant_id, self._now(), actor[:200], env, circuit, version, passed, coverage, detail, audit_id)
        values = {k: v for k, v in asdict(run).items() if k != "id"}
        with self._write() as conn:
            inserted = conn.execute(self.tables.gate_runs.insert().values(**values)).inserted_primary_key
        return replace(run, id=int(inserted[0]) if inserted else 0)

    def gate_runs(self, tenant_id: str, limit: int = 100) -> list[GateRun]:
        """The deploy gate's verdicts, newest first."""
        g = self.tables.gate_runs
        with self._read() as conn:
            rows = conn.execute(
                sa.select(g).where(g.c.tenant_id == tenant_id).order_by(g.c.id.desc()).limit(_clamp(limit))
            ).all()
        return [GateRun(**dict(row._mapping)) for row in rows]

    def _lock_environment(self, conn: Connection, tenant_id: str, env: str) -> None:
        g = self.tables.generations
        values = {"tenant_id": tenant_id, "env": env, "generation": 0}
        conn.execute(self._insert_ignore(g, values, ["tenant_id", "env"]))
        conn.execute(sa.select(g.c.generation).where((g.c.tenant_id == tenant_id) & (g.c.env == env)).with_for_update())

    def _bump(self, conn: Connection, tenant_id: str, env: str) -> None:
        g = self.tables.generations
        conn.execute(
            g.update().where((g.c.tenant_id == tenant_id) & (g.c.env == env)).values(generation=g.c.generation + 1)
        )

    def _activate(self, conn: Connection, bundle: BundleInfo, env: str, actor: str, action: str) -> AuditEntry | None:
        d = self.tables.deployments
        mine = (d.c.tenant_id == bundle.tenant_id) & (d.c.env == env) & (d.c.name == bundle.name)
        current = conn.execute(sa.select(d.c.version).where(mine)).scalar()
        if current == bundle.version:
            return None
        values = {
            "tenant_id": bundle.tenant_id,
            "env": env,
            "name": bundle.name,
            "version": bundle.version,
            "sha256": bundle.sha256,
            "deployed_at": self._now(),
            "deployed_by": actor,
        }
        conn.execute(self._upsert(d, values, ["tenant_id", "env", "name"]))
        return self._audit(conn, bundle.tenant_id, actor, action, env, bundle.name, current, bundle.version)

    def _audit(
        self,
        conn: Connection,
        tenant_id: str,
        actor: str,
        action: str,
        env: str | None,
        circuit: str,
        from_version: str | None,
        to_version: str | None,
    ) -> AuditEntry:
        at = self._now()
        a = self.tables.audit
        new_id = conn.execute(
            a.insert()
            .values(
                tenant_id=tenant_id,
                at=at,
                actor=actor[:200],
                action=action,
                env=env,
                circuit=circuit,
                from_version=from_version,
                to_version=to_version,
            )
            .returning(a.c.id)
        ).scalar_one()
        return AuditEntry(int(new_id), tenant_id, at, actor[:200], action, env, circuit, from_version, to_version)

    # --- executions ----------------------------------------------------------------------------

    def save_execution(self, entry: ExecutionEntry) -> None:
        _check_env(entry.env)
        if entry.started_at.tzinfo is None:
            raise Rejected("started_at must be an aware datetime")
        try:
            with self._write() as conn:
                conn.execute(
                    self.tables.executions.insert().values(
                        id=entry.id,
                        tenant_id=entry.tenant_id,
                        env=entry.env,
                        circuit=entry.circuit,
                        version=entry.version,
                        trigger=entry.trigger[:200],
                        status=entry.status,
                        error=entry.error,
                        usage=json.dumps(entry.usage, default=str),
                        duration_ms=float(entry.duration_ms),
                        started_at=entry.started_at,
                        debug_log=entry.debug_log,
                    )
                )
        except sa.exc.IntegrityError:
            raise Conflict(f"execution {entry.id!r} already exists") from None

    def list_executions(
        self,
        tenant_id: str,
        env: str | None = None,
        circuit: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        before_id: str | None = None,
        include_log: bool = False,
    ) -> list[ExecutionEntry]:
        """Executions newest first. ``before_id`` (the last id of a page) continues after it.

        ``since`` is inclusive and ``until`` exclusive. The debug log is left empty unless
        ``include_log``: it can be large, and ``get_execution`` has it.
        """
        e = self.tables.executions
        columns = [c for c in e.c if include_log or c.name != "debug_log"]
        query = sa.select(*columns).where(e.c.tenant_id == tenant_id)
        for column, value in ((e.c.env, env), (e.c.circuit, circuit), (e.c.status, status)):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(e.c.started_at >= since)
        if until is not None:
            query = query.where(e.c.started_at < until)
        with self._read() as conn:
            if before_id is not None:
                cursor = conn.execute(
                    sa.select(e.c.started_at).where((e.c.tenant_id == tenant_id) & (e.c.id == before_id))
                ).scalar()
                if cursor is None:
                    raise NotFound(f"execution {before_id!r} does not exist")
                query = query.where((e.c.started_at < cursor) | ((e.c.started_at == cursor) & (e.c.id < before_id)))
            rows = conn.execute(query.order_by(e.c.started_at.desc(), e.c.id.desc()).limit(_clamp(limit))).all()
        return [_execution(r) for r in rows]

    def get_execution(self, tenant_id: str, execution_id: str) -> ExecutionEntry | None:
        e = self.tables.executions
        with self._read() as conn:
            row = conn.execute(sa.select(e).where((e.c.tenant_id == tenant_id) & (e.c.id == execution_id))).first()
        return None if row is None else _execution(row)

    def purge_executions(self, tenant_id: str, older_than: datetime) -> int:
        """Delete the tenant's executions that started before ``older_than``; returns how many."""
        e = self.tables.executions
        with self._write() as conn:
            result = conn.execute(e.delete().where((e.c.tenant_id == tenant_id) & (e.c.started_at < older_than)))
        return int(result.rowcount)

    def purge_expired_executions(self) -> int:
        """Apply every tenant's ``execution_retention_days``; for a periodic task."""
        now = self._now()
        return sum(
            self.purge_executions(t.id, now - timedelta(days=self.get_settings(t.id).execution_retention_days))
            for t in self.list_tenants()
        )

    # --- webhooks ------------------------------------------------------------------------------

    def remember_webhook_id(self, tenant_id: str, source: str, webhook_id: str, ttl_s: float) -> bool:
        """Record a delivered webhook id; False if it was already seen within its TTL (a replay)."""
        if not webhook_id:
            raise Rejected("webhook id must be non-empty")
        key = webhook_id if len(webhook_id) <= _MAX_WEBHOOK_ID else "sha256:" + _sha256(webhook_id)
        w = self.tables.webhook_ids
        now = self._now()
        with self._read() as conn:
            conn.execute(w.delete().where((w.c.tenant_id == tenant_id) & (w.c.expires_at <= now)))
            try:
                conn.execute(
                    w.insert().values(
                        tenant_id=tenant_id,
                        source=source[:32],
                        webhook_id=key,
                        expires_at=now + timedelta(seconds=ttl_s),
                    )
                )
            except sa.exc.IntegrityError:
                return False
        return True

    def seen_webhook_id(self, tenant_id: str, source: str, webhook_id: str) -> bool:
        """True if ``webhook_id`` was remembered and has not expired (the server checks before working)."""
        key = webhook_id if len(webhook_id) <= _MAX_WEBHOOK_ID else "sha256:" + _sha256(webhook_id)
        w = self.tables.webhook_ids
        with self._read() as conn:
            row = conn.execute(
                sa.select(w.c.webhook_id).where(
                    (w.c.tenant_id == tenant_id) & (w.c.webhook_id == key) & (w.c.expires_at > self._now())
                )
            ).first()
        return row is not None

    def last_seen(self, tenant_id: str, env: str, object_name: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The last version of each record the host saw, by id (GoHighLevel sends no prior values)."""
        _check_env(env)
        s = self.tables.last_seen
        found: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(ids))
        with self._read() as conn:
            for start in range(0, len(unique), _IN_CHUNK):
                rows = conn.execute(
                    sa.select(s.c.record_id, s.c.record).where(
                        (s.c.tenant_id == tenant_id)
                        & (s.c.env == env)
                        & (s.c.object == object_name.lower())
                        & s.c.record_id.in_(unique[start : start + _IN_CHUNK])
                    )
                )
                found.update({r.record_id: json.loads(r.record) for r in rows})
        return found

    def remember_records(
        self, tenant_id: str, env: str, object_name: str, records: Sequence[Mapping[str, Any]], id_field: str = "Id"
    ) -> None:
        """Keep these records as the last-seen versions (each must carry ``id_field``)."""
        _check_env(env)
        s = self.tables.last_seen
        now = self._now()
        rows: dict[str, dict[str, Any]] = {}  # by id: the last version of a record wins
        for record in records:
            record_id = record.get(id_field)
            if not isinstance(record_id, str) or not record_id:
                raise Rejected(f"record has no {id_field}")
            rows[record_id] = {
                "tenant_id": tenant_id,
                "env": env,
                "object": object_name.lower(),
                "record_id": record_id,
                "record": json.dumps(record, default=str),
                "updated_at": now,
            }
        if not rows:
            return
        insert = postgresql.insert(s) if self.dialect == "postgresql" else sqlite.insert(s)
        statement = insert.on_conflict_do_update(
            index_elements=["tenant_id", "env", "object", "record_id"],
            set_={"record": insert.excluded.record, "updated_at": insert.excluded.updated_at},
        )
        with self._write() as conn:
            conn.execute(statement, list(rows.values()))

    def forget_records(self, tenant_id: str, env: str, object_name: str, ids: Sequence[str]) -> None:
        """Drop last-seen versions, e.g. after a delete."""
        _check_env(env)
        s = self.tables.last_seen
        with self._write() as conn:
            for start in range(0, len(ids), _IN_CHUNK):
                conn.execute(
                    s.delete().where(
                        (s.c.tenant_id == tenant_id)
                        & (s.c.env == env)
                        & (s.c.object == object_name.lower())
                        & s.c.record_id.in_(list(ids[start : start + _IN_CHUNK]))
                    )
                )

    @staticmethod
    def records_tenant(tenant_id: str, env: str) -> str:
        """The CircuitDB tenant holding a tenant environment's records: ``<tenant_id>:<env>``."""
        return records_tenant(tenant_id, env)

    # --- dialect helpers -------------------------------------------------------------------------

    def _upsert(self, table: sa.Table, values: dict[str, Any], keys: list[str]) -> Any:
        insert = postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)
        statement = insert.values(**values)
        changed = {k: statement.excluded[k] for k in values if k not in keys}
        return statement.on_conflict_do_update(index_elements=keys, set_=changed)

    def _insert_ignore(self, table: sa.Table, values: dict[str, Any], keys: list[str]) -> Any:
        insert = postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)
        return insert.values(**values).on_conflict_do_nothing(index_elements=keys)


def records_tenant(tenant_id: str, env: str) -> str:
    """The CircuitDB tenant holding a tenant environment's records."""
    _check_env(env)
    return f"{tenant_id}:{env}"


def _engine(url: str | Path, busy_timeout: float) -> Engine:
    text = str(url)
    if isinstance(url, Path) or "://" not in text:
        text = f"sqlite:///{Path(text)}"
    if text.startswith(("postgresql://", "postgres://")):
        text = "postgresql+psycopg://" + text.split("://", 1)[1]
    if text.startswith("sqlite"):
        engine = sa.create_engine(
            text,
            isolation_level="AUTOCOMMIT",
            connect_args={"timeout": busy_timeout, "check_same_thread": False},
            pool_size=8,
            max_overflow=-1,
        )
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        return engine
    if text.startswith("postgresql"):
        return sa.create_engine(text, isolation_level="AUTOCOMMIT", pool_size=5, max_overflow=20, pool_pre_ping=True)
    raise Rejected(f"unsupported database URL scheme: {text.split(':', 1)[0]!r} (sqlite or postgresql)")


def _check_env(env: str) -> None:
    if env not in ENVIRONMENTS:
        raise Rejected(f"unknown environment {env!r} (expected one of {', '.join(ENVIRONMENTS)})")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _clamp(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIST))


def _plain(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Settings changes as JSON-ready values (a LimitsProfile or SecretStr may be passed)."""
    plain: dict[str, Any] = {}
    for key, value in changes.items():
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        elif hasattr(value, "model_dump"):
            value = value.model_dump()
        plain[key] = value
    return plain


def _version_taken(info: BundleInfo) -> str:
    return (
        f"bundle {info.name} {info.version} already exists with different content; "
        "stored bundles are immutable, so bump the version"
    )


def _api_key(row: Any) -> ApiKey:
    return ApiKey(
        row.id,
        row.tenant_id,
        row.label,
        frozenset(row.scopes.split(",")),
        row.created_at,
        row.revoked_at,
        row.last_used_at,
    )


def _audit_entry(row: Any) -> AuditEntry:
    return AuditEntry(
        int(row.id),
        row.tenant_id,
        row.at,
        row.actor,
        row.action,
        row.env,
        row.circuit,
        row.from_version,
        row.to_version,
    )


def _execution(row: Any) -> ExecutionEntry:
    mapping = row._mapping
    return ExecutionEntry(
        id=row.id,
        tenant_id=row.tenant_id,
        env=row.env,
        circuit=row.circuit,
        version=row.version,
        trigger=row.trigger,
        status=row.status,
        started_at=row.started_at,
        duration_ms=float(row.duration_ms),
        error=row.error,
        usage=json.loads(row.usage),
        debug_log=mapping.get("debug_log") or "",
    )
