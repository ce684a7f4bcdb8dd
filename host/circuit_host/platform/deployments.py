"""Which version of each circuit is active in each tenant environment, and how that changes.

``deploy``, ``promote``, ``rollback`` and ``undeploy`` each run in one transaction that locks
the environment's generation row (``SELECT ... FOR UPDATE``; ``BEGIN IMMEDIATE`` on SQLite),
writes the change and its audit entry, and bumps the generation. ``active_circuits`` reads
the generation (one primary-key lookup) and reloads only when it moved, so another
process's rollback is seen on the next call. The deploy gate's verdicts are kept here too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import Rejected
from .audit_log import AuditLog
from .database import PlatformDatabase, check_env, page_size
from .models import ActiveCircuit, AuditEntry, BundleInfo, Conflict, GateRun, NotFound
from .stored_bundles import StoredBundles
from .tenants import Tenants


class Deployments:
    """Deployment changes per tenant environment, their generation counter and the gate's verdicts."""

    def __init__(self, db: PlatformDatabase, tenants: Tenants, bundles: StoredBundles, audit: AuditLog) -> None:
        self._db = db
        self._tenants = tenants
        self._bundles = bundles
        self._audit = audit
        self._lock = threading.Lock()
        self._active: dict[tuple[str, str], tuple[int, tuple[ActiveCircuit, ...]]] = {}

    def deploy(self, tenant_id: str, env: str, name: str, version: str, actor: str) -> AuditEntry | None:
        """Make a stored version the active one in ``env``; None if it already was."""
        check_env(env)
        bundle = self._bundles.get_bundle(tenant_id, name, version)
        if bundle is None:
            raise NotFound(f"bundle {name} {version} does not exist")
        bundle.manifest.limits_profile(self._tenants.get_settings(tenant_id).max_limits)
        with self._db.write() as conn:
            self._lock_environment(conn, tenant_id, env)
            entry = self._activate(conn, bundle, env, actor, "deploy")
            if entry is not None:
                self._bump(conn, tenant_id, env)
            return entry

    def promotion_sources(
        self, tenant_id: str, from_env: str, to_env: str, name: str | None = None
    ) -> list[BundleInfo]:
        """What a promotion would copy now: the bundles active in ``from_env`` (all, or circuit ``name``),
        each within the tenant's limit ceiling; refused at once when there is nothing to promote."""
        check_env(from_env)
        check_env(to_env)
        if from_env == to_env:
            raise Rejected("promote needs two different environments")
        sources = [c for c in self.active_circuits(tenant_id, from_env) if name is None or c.name == name]
        if not sources:
            what = f"circuit {name}" if name is not None else "no circuit"
            raise NotFound(f"{what} is not active in {from_env}" if name else f"no circuit is active in {from_env}")
        ceiling = self._tenants.get_settings(tenant_id).max_limits
        bundles = []
        for circuit in sources:
            circuit.manifest.limits_profile(ceiling)
            bundle = self._bundles.get_bundle_by_sha(tenant_id, circuit.sha256)
            if bundle is None:  # pragma: no cover - bundles are never deleted
                raise NotFound(f"bundle {circuit.sha256} does not exist")
            bundles.append(bundle)
        return bundles

    def promote(
        self,
        tenant_id: str,
        from_env: str,
        to_env: str,
        actor: str,
        name: str | None = None,
        bundles: Sequence[BundleInfo] | None = None,
    ) -> list[AuditEntry]:
        """Copy the versions active in ``from_env`` (all, or circuit ``name``) into ``to_env``.

        ``bundles``: exactly these (``promotion_sources`` as read when the promotion was asked for and
        gated), so a deploy to ``from_env`` meanwhile cannot slip an ungated version through."""
        if bundles is None:
            bundles = self.promotion_sources(tenant_id, from_env, to_env, name)
        else:  # read earlier: the limit ceiling may have moved since
            ceiling = self._tenants.get_settings(tenant_id).max_limits
            for bundle in bundles:
                bundle.manifest.limits_profile(ceiling)
        entries: list[AuditEntry] = []
        with self._db.write() as conn:
            self._lock_environment(conn, tenant_id, to_env)
            for bundle in bundles:
                entry = self._activate(conn, bundle, to_env, actor, "promote")
                if entry is not None:
                    entries.append(entry)
            if entries:
                self._bump(conn, tenant_id, to_env)
        return entries

    def rollback(
        self,
        tenant_id: str,
        env: str,
        name: str,
        actor: str,
        to_version: str | None = None,
        admit: Callable[[BundleInfo], None] | None = None,
    ) -> AuditEntry:
        """Go back to ``to_version``, by default to the version active before the current one.

        Walking back repeatedly retraces the deploy history (v3 -> v2 -> v1), because the
        previous version is taken from the deploy or promotion that activated the current one.
        ``admit`` (the deploy path's rules: gate, credentials, schema) sees the target bundle inside
        the environment's lock and raises to refuse it.
        """
        check_env(env)
        d, a = self._db.tables.deployments, self._db.tables.audit
        with self._db.write() as conn:
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
            bundle = self._bundles.get_bundle(tenant_id, name, to_version)
            if bundle is None:
                raise NotFound(f"bundle {name} {to_version} does not exist")
            if admit is not None:
                admit(bundle)
            entry = self._activate(conn, bundle, env, actor, "rollback")
            assert entry is not None
            self._bump(conn, tenant_id, env)
            return entry

    def undeploy(self, tenant_id: str, env: str, name: str, actor: str) -> AuditEntry:
        """Deactivate a circuit in ``env``: no version of it runs there any more."""
        check_env(env)
        d = self._db.tables.deployments
        mine = (d.c.tenant_id == tenant_id) & (d.c.env == env) & (d.c.name == name)
        with self._db.write() as conn:
            self._lock_environment(conn, tenant_id, env)
            current = conn.execute(sa.select(d.c.version).where(mine)).scalar()
            if current is None:
                raise NotFound(f"circuit {name} is not active in {env}")
            conn.execute(d.delete().where(mine))
            self._bump(conn, tenant_id, env)
            return self._audit.append(conn, tenant_id, actor, "undeploy", env, name, current, None)

    def generation(self, tenant_id: str, env: str) -> int:
        """A counter bumped by every deployment change in the tenant environment (for caches)."""
        check_env(env)
        g = self._db.tables.generations
        with self._db.read() as conn:
            value = conn.execute(
                sa.select(g.c.generation).where((g.c.tenant_id == tenant_id) & (g.c.env == env))
            ).scalar()
        return int(value or 0)

    def active_circuits(self, tenant_id: str, env: str) -> list[ActiveCircuit]:
        """The circuits active in a tenant environment, by name: one primary-key read when unchanged."""
        check_env(env)
        g, d, b = self._db.tables.generations, self._db.tables.deployments, self._db.tables.bundles
        with self._db.read() as conn:
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
                r.name, r.version, r.sha256, self._bundles.manifest(r.sha256, r.manifest), r.deployed_at, r.deployed_by
            )
            for r in rows
        )
        with self._lock:
            self._active[(tenant_id, env)] = (generation, active)
        return list(active)

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
        check_env(env)
        run = GateRun(
            0, tenant_id, self._db.now(), actor[:200], env, circuit, version, passed, coverage, detail, audit_id
        )
        values = {k: v for k, v in asdict(run).items() if k != "id"}
        with self._db.write() as conn:
            inserted = conn.execute(self._db.tables.gate_runs.insert().values(**values)).inserted_primary_key
        return replace(run, id=int(inserted[0]) if inserted else 0)

    def passed_gate(self, tenant_id: str, env: str, circuit: str, version: str) -> bool:
        """Whether this version of the circuit ever passed the deploy gate in ``env``."""
        g = self._db.tables.gate_runs
        with self._db.read() as conn:
            found = conn.execute(
                sa.select(g.c.id)
                .where(
                    (g.c.tenant_id == tenant_id)
                    & (g.c.env == env)
                    & (g.c.circuit == circuit)
                    & (g.c.version == version)
                    & g.c.passed
                )
                .limit(1)
            ).first()
        return found is not None

    def purge_expired_gate_runs(self) -> int:
        """Delete gate runs older than each tenant's execution retention; returns how many went.

        The newest passing run of each active version is kept, so a rollback to it stays possible."""
        g, d = self._db.tables.gate_runs, self._db.tables.deployments
        now = self._db.now()
        removed = 0
        with self._db.write() as conn:
            for tenant in self._tenants.list_tenants():
                cutoff = now - timedelta(days=tenant.settings.execution_retention_days)
                active = sa.select(d.c.name, d.c.version).where(d.c.tenant_id == tenant.id)
                keep = {(row.name, row.version) for row in conn.execute(active)}
                old = conn.execute(
                    sa.select(g.c.id, g.c.circuit, g.c.version, g.c.passed).where(
                        (g.c.tenant_id == tenant.id) & (g.c.at < cutoff)
                    )
                ).all()
                doomed = [r.id for r in old if not (r.passed and (r.circuit, r.version) in keep)]
                if doomed:
                    removed += conn.execute(g.delete().where(g.c.id.in_(doomed))).rowcount or 0
        return removed

    def gate_runs(self, tenant_id: str, limit: int = 100) -> list[GateRun]:
        """The deploy gate's verdicts, newest first."""
        g = self._db.tables.gate_runs
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(g).where(g.c.tenant_id == tenant_id).order_by(g.c.id.desc()).limit(page_size(limit))
            ).all()
        return [GateRun(**dict(row._mapping)) for row in rows]

    def _lock_environment(self, conn: Connection, tenant_id: str, env: str) -> None:
        g = self._db.tables.generations
        values = {"tenant_id": tenant_id, "env": env, "generation": 0}
        conn.execute(self._db.insert_ignore(g, values, ["tenant_id", "env"]))
        conn.execute(sa.select(g.c.generation).where((g.c.tenant_id == tenant_id) & (g.c.env == env)).with_for_update())

    def _bump(self, conn: Connection, tenant_id: str, env: str) -> None:
        g = self._db.tables.generations
        conn.execute(
            g.update().where((g.c.tenant_id == tenant_id) & (g.c.env == env)).values(generation=g.c.generation + 1)
        )

    def _activate(self, conn: Connection, bundle: BundleInfo, env: str, actor: str, action: str) -> AuditEntry | None:
        d = self._db.tables.deployments
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
            "deployed_at": self._db.now(),
            "deployed_by": actor,
        }
        conn.execute(self._db.upsert(d, values, ["tenant_id", "env", "name"]))
        return self._audit.append(conn, bundle.tenant_id, actor, action, env, bundle.name, current, bundle.version)
