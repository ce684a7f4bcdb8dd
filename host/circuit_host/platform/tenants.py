"""Tenants, their settings, and the credentials that act for them: API keys and webhook URL tokens."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import Rejected
from .audit_log import AuditLog
from .database import PlatformDatabase, check_env
from .models import SCOPES, ApiKey, Conflict, NotFound, Tenant
from .secret_box import SecretBox, is_sealed, sealed_key_id
from .settings import TenantSettings, changed_settings

TENANT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
KEY_PREFIX = "cs_"
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_LAST_USED_EVERY = timedelta(seconds=60)


class Tenants:
    """Who the tenants are, how each is configured, and which keys and tokens reach it."""

    def __init__(self, db: PlatformDatabase, audit: AuditLog, box: SecretBox) -> None:
        self._db = db
        self._audit = audit
        self._box = box
        self._lock = threading.Lock()
        self._parsed_settings: OrderedDict[tuple[str, str], TenantSettings] = OrderedDict()
        self.changes = 0
        """Writes this process made to tenants, settings, keys and tokens: a cache of them in this
        process (the server's ``CredentialCache``) is stale once it moves."""

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """The database's write transaction; counts the change once it is committed (or failed)."""
        try:
            with self._db.write() as conn:
                yield conn
        finally:
            with self._lock:
                self.changes += 1

    # --- tenants and settings --------------------------------------------------------------

    def create_tenant(self, name: str, tenant_id: str | None = None) -> Tenant:
        """A new tenant with default settings; ``tenant_id`` defaults to a slug of the name plus random letters."""
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise Rejected("tenant name must be a non-empty string of at most 200 characters")
        if tenant_id is None:
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:24].strip("-") or "tenant"
            tenant_id = f"{slug}-{secrets.token_hex(3)}"
        elif not TENANT_ID_PATTERN.match(tenant_id):
            raise Rejected(f"tenant id {tenant_id!r} must be lower case letters, digits and '-' (at most 64)")
        tenant = Tenant(tenant_id, name.strip(), self._db.now(), TenantSettings())
        t = self._db.tables.tenants
        try:
            with self._write() as conn:
                conn.execute(
                    t.insert().values(
                        id=tenant.id,
                        name=tenant.name,
                        settings=self._seal(tenant.id, TenantSettings()),
                        created_at=tenant.created_at,
                    )
                )
        except sa.exc.IntegrityError:
            raise Conflict(f"tenant {tenant_id!r} already exists") from None
        return tenant

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        t = self._db.tables.tenants
        with self._db.read() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == tenant_id)).first()
        return None if row is None else self._tenant(row)

    def list_tenants(self) -> list[Tenant]:
        t = self._db.tables.tenants
        with self._db.read() as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.created_at, t.c.id)).all()
        return [self._tenant(r) for r in rows]

    def get_settings(self, tenant_id: str) -> TenantSettings:
        tenant = self.get_tenant(tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id!r} does not exist")
        return tenant.settings

    def update_settings(
        self,
        tenant_id: str,
        changes: Mapping[str, Any] | TenantSettings | Callable[[TenantSettings], Mapping[str, Any]],
        actor: str | None = None,
    ) -> TenantSettings:
        """Apply a partial update, or replace with a ``TenantSettings``; invalid values are rejected.

        A partial update is a JSON merge patch on the top-level settings: a key given replaces that
        setting's whole value, ``None`` returns it to its default (clearing an optional one). A callable
        is handed the current settings, under the row lock, and returns the patch (read-modify-write
        without losing a concurrent change). With ``actor``, an audit entry naming the settings that
        changed (never their values) is written in the same transaction.
        """
        t = self._db.tables.tenants
        with self._write() as conn:
            raw = conn.execute(sa.select(t.c.settings).where(t.c.id == tenant_id).with_for_update()).scalar()
            if raw is None:
                raise NotFound(f"tenant {tenant_id!r} does not exist")
            before = self._settings(tenant_id, raw)
            if isinstance(changes, TenantSettings):
                settings = changes
            else:
                patch = changes(before) if callable(changes) else changes
                merged = self._stored(tenant_id, raw)
                for key, value in _plain(patch).items():
                    if value is None:
                        merged.pop(key, None)
                    else:
                        merged[key] = value
                settings = TenantSettings.validated(merged)
            conn.execute(t.update().where(t.c.id == tenant_id).values(settings=self._seal(tenant_id, settings)))
            changed = changed_settings(before, settings) if actor is not None else []
            if actor is not None and changed:
                self._audit.append(conn, tenant_id, actor, "settings", None, "", None, None, changed)
        return settings

    def require_tenant(self, tenant_id: str) -> None:
        """``NotFound`` unless the tenant exists."""
        if self.get_tenant(tenant_id) is None:
            raise NotFound(f"tenant {tenant_id!r} does not exist")

    def _tenant(self, row: Any) -> Tenant:
        return Tenant(row.id, row.name, row.created_at, self._settings(row.id, row.settings))

    def _settings(self, tenant_id: str, raw: str) -> TenantSettings:
        """Parsed settings, cached by tenant and stored ciphertext: decrypting and validating on every
        request is wasted work. The tenant is part of the key, so a ciphertext copied into another
        tenant's row is opened (and refused) rather than answered from the cache."""
        with self._lock:
            cached = self._parsed_settings.get((tenant_id, raw))
        if cached is None:
            cached = TenantSettings.model_validate(self._stored(tenant_id, raw))
            with self._lock:
                self._parsed_settings[(tenant_id, raw)] = cached
                while len(self._parsed_settings) > 1024:
                    self._parsed_settings.popitem(last=False)
        return cached

    # --- settings at rest: sealed under the master key (secret_box) --------------------------

    def fingerprint(self, secret: str) -> str:
        """How a secret is shown to operators (``TenantSettings.redacted``): keyed by the master key."""
        return self._box.fingerprint(secret)

    def _seal(self, tenant_id: str, settings: TenantSettings) -> str:
        """The whole settings document, encrypted: every secret a settings model holds, now or later, is covered."""
        return self._box.seal(json.dumps(settings.to_storage()).encode(), _settings_context(tenant_id))

    def _stored(self, tenant_id: str, raw: str) -> dict[str, Any]:
        stored: dict[str, Any] = json.loads(self._box.open(raw, _settings_context(tenant_id)))
        return stored

    def seal_plaintext_settings(self) -> int:
        """Check that every tenant's settings open under the master key, and encrypt any stored in
        plaintext (written before encryption at rest); returns how many were encrypted.

        Run when the platform opens, so a wrong key stops the start instead of failing requests.
        """
        t = self._db.tables.tenants
        with self._db.read() as conn:
            rows = conn.execute(sa.select(t.c.id, t.c.settings)).all()
        plaintext = [r.id for r in rows if not is_sealed(r.settings)]
        for row in rows:
            if row.id not in plaintext:
                self._stored(row.id, row.settings)
        if not plaintext:
            return 0
        sealed = 0
        with self._write() as conn:
            for tenant_id in plaintext:
                mine = t.c.id == tenant_id
                raw = conn.execute(sa.select(t.c.settings).where(mine).with_for_update()).scalar()
                if raw is not None and not is_sealed(raw):
                    settings = self._box.seal(raw.encode(), _settings_context(tenant_id))
                    conn.execute(t.update().where(mine).values(settings=settings))
                    sealed += 1
        return sealed

    def reseal_settings(self, box: SecretBox) -> int:
        """Re-encrypt every tenant's settings under ``box``'s current key, in one transaction, and use
        ``box`` from then on (it must also hold the key the settings are under now)."""
        t = self._db.tables.tenants
        count = 0
        with self._write() as conn:
            for row in conn.execute(sa.select(t.c.id, t.c.settings).with_for_update()).all():
                context = _settings_context(row.id)
                resealed = box.seal(box.open(row.settings, context), context)
                conn.execute(t.update().where(t.c.id == row.id).values(settings=resealed))
                count += 1
        self._box = box
        with self._lock:
            self._parsed_settings.clear()
        return count

    @property
    def secret_box(self) -> SecretBox:
        """What the settings are sealed and opened with."""
        return self._box

    def key_ids_in_use(self) -> set[str]:
        """The ids of the master keys the stored settings are encrypted under."""
        t = self._db.tables.tenants
        with self._db.read() as conn:
            values = conn.execute(sa.select(t.c.settings)).scalars().all()
        return {kid for kid in map(sealed_key_id, values) if kid is not None}

    # --- API keys --------------------------------------------------------------------------

    def create_api_key(self, tenant_id: str, scopes: Iterable[str], label: str = "") -> tuple[ApiKey, str]:
        """A new key and its plaintext ``cs_<keyid>_<secret>``, shown once: only a hash is stored."""
        self.require_tenant(tenant_id)
        wanted = frozenset(scopes)
        if not wanted or not wanted <= set(SCOPES):
            raise Rejected(f"scopes must be a non-empty subset of {', '.join(SCOPES)}; got {sorted(wanted)}")
        if len(label) > 200:
            raise Rejected("label must be at most 200 characters")
        key = ApiKey(secrets.token_hex(8), tenant_id, label, wanted, self._db.now())
        secret = secrets.token_urlsafe(32)
        with self._write() as conn:
            conn.execute(
                self._db.tables.api_keys.insert().values(
                    id=key.id,
                    tenant_id=tenant_id,
                    label=label,
                    scopes=",".join(sorted(wanted)),
                    secret_sha256=sha256_hex(secret),
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
        k = self._db.tables.api_keys
        with self._db.read() as conn:
            row = conn.execute(sa.select(k).where(k.c.id == parts[0])).first()
        # The secret is 256 random bits, so a plain sha256 is enough; compare in constant time anyway.
        if row is None or not hmac.compare_digest(row.secret_sha256, sha256_hex(parts[1])):
            return None
        if row.revoked_at is not None:
            return None
        key = _api_key(row)
        now = self._db.now()
        if key.last_used_at is None or now - key.last_used_at > _LAST_USED_EVERY:
            with self._db.read() as conn:
                conn.execute(k.update().where(k.c.id == key.id).values(last_used_at=now))
            key = replace(key, last_used_at=now)
        return key

    def list_api_keys(self, tenant_id: str) -> list[ApiKey]:
        k = self._db.tables.api_keys
        with self._db.read() as conn:
            rows = conn.execute(sa.select(k).where(k.c.tenant_id == tenant_id).order_by(k.c.created_at, k.c.id))
            return [_api_key(r) for r in rows]

    def revoke_api_key(self, tenant_id: str, key_id: str) -> ApiKey:
        """Revoke a key of this tenant; revoking twice keeps the first revocation time."""
        k = self._db.tables.api_keys
        with self._write() as conn:
            mine = (k.c.id == key_id) & (k.c.tenant_id == tenant_id)
            conn.execute(k.update().where(mine & k.c.revoked_at.is_(None)).values(revoked_at=self._db.now()))
            row = conn.execute(sa.select(k).where(mine)).first()
        if row is None:
            raise NotFound(f"API key {key_id!r} does not exist")
        return _api_key(row)

    # --- webhook URL tokens -----------------------------------------------------------------
    # Stored as sha256 (like API keys: 256 random bits need no slow hash), so a token is shown
    # only by the call that makes it; the webhook path looks it up by its hash.

    def issue_webhook_token(self, tenant_id: str, env: str) -> str | None:
        """A token for the tenant environment if it has none yet (shown this once), else None."""
        check_env(env)
        self.require_tenant(tenant_id)
        w = self._db.tables.webhook_tokens
        token = secrets.token_urlsafe(32)
        values = {"tenant_id": tenant_id, "env": env, "token_sha256": sha256_hex(token), "created_at": self._db.now()}
        with self._write() as conn:
            insert = self._db.insert_ignore(w, values, ["tenant_id", "env"]).returning(w.c.env)
            inserted = conn.execute(insert).first() is not None
        return token if inserted else None

    def rotate_webhook_token(self, tenant_id: str, env: str) -> str:
        """A new token (made if there was none), shown this once: the old URL stops working at once."""
        check_env(env)
        self.require_tenant(tenant_id)
        w = self._db.tables.webhook_tokens
        token = secrets.token_urlsafe(32)
        values = {"tenant_id": tenant_id, "env": env, "token_sha256": sha256_hex(token), "created_at": self._db.now()}
        with self._write() as conn:
            conn.execute(self._db.upsert(w, values, ["tenant_id", "env"]))
        return token

    def resolve_webhook_token(self, token: str) -> tuple[str, str] | None:
        """``(tenant_id, env)`` for a webhook URL token, or None."""
        if not isinstance(token, str) or not 20 <= len(token) <= 100:
            return None
        digest = sha256_hex(token)
        w = self._db.tables.webhook_tokens
        with self._db.read() as conn:
            row = conn.execute(sa.select(w).where(w.c.token_sha256 == digest)).first()
        if row is None or not hmac.compare_digest(row.token_sha256, digest):
            return None
        return str(row.tenant_id), str(row.env)


def records_tenant(tenant_id: str, env: str) -> str:
    """The CircuitDB tenant holding a tenant environment's records: ``<tenant_id>:<env>``."""
    check_env(env)
    return f"{tenant_id}:{env}"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _settings_context(tenant_id: str) -> str:
    """What a tenant's sealed settings are bound to: this column of this tenant's row."""
    return f"tenant-settings:{tenant_id}"


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
