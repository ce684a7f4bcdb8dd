"""Tenants, their settings, and the credentials that act for them: API keys and webhook URL tokens."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from ..errors import Rejected
from .audit_log import AuditLog
from .database import PlatformDatabase, check_env
from .models import SCOPES, ApiKey, Conflict, NotFound, Tenant
from .settings import TenantSettings, changed_settings

TENANT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
KEY_PREFIX = "cs_"
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_LAST_USED_EVERY = timedelta(seconds=60)


class Tenants:
    """Who the tenants are, how each is configured, and which keys and tokens reach it."""

    def __init__(self, db: PlatformDatabase, audit: AuditLog) -> None:
        self._db = db
        self._audit = audit
        self._lock = threading.Lock()
        self._parsed_settings: OrderedDict[str, TenantSettings] = OrderedDict()

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
            with self._db.write() as conn:
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
        with self._db.write() as conn:
            raw = conn.execute(sa.select(t.c.settings).where(t.c.id == tenant_id).with_for_update()).scalar()
            if raw is None:
                raise NotFound(f"tenant {tenant_id!r} does not exist")
            before = self._settings(raw)
            if isinstance(changes, TenantSettings):
                settings = changes
            else:
                patch = changes(before) if callable(changes) else changes
                merged = json.loads(raw)
                for key, value in _plain(patch).items():
                    if value is None:
                        merged.pop(key, None)
                    else:
                        merged[key] = value
                settings = TenantSettings.validated(merged)
            conn.execute(t.update().where(t.c.id == tenant_id).values(settings=json.dumps(settings.to_storage())))
            changed = changed_settings(before, settings) if actor is not None else []
            if actor is not None and changed:
                self._audit.append(conn, tenant_id, actor, "settings", None, "", None, None, changed)
        return settings

    def require_tenant(self, tenant_id: str) -> None:
        """``NotFound`` unless the tenant exists."""
        if self.get_tenant(tenant_id) is None:
            raise NotFound(f"tenant {tenant_id!r} does not exist")

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
        with self._db.write() as conn:
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
        with self._db.write() as conn:
            mine = (k.c.id == key_id) & (k.c.tenant_id == tenant_id)
            conn.execute(k.update().where(mine & k.c.revoked_at.is_(None)).values(revoked_at=self._db.now()))
            row = conn.execute(sa.select(k).where(mine)).first()
        if row is None:
            raise NotFound(f"API key {key_id!r} does not exist")
        return _api_key(row)

    # --- webhook URL tokens -----------------------------------------------------------------

    def webhook_token(self, tenant_id: str, env: str) -> str:
        """The tenant environment's webhook URL token, created on first use."""
        check_env(env)
        w = self._db.tables.webhook_tokens
        mine = (w.c.tenant_id == tenant_id) & (w.c.env == env)
        with self._db.read() as conn:
            token = conn.execute(sa.select(w.c.token).where(mine)).scalar()
        if token is not None:
            return str(token)
        self.require_tenant(tenant_id)
        with self._db.write() as conn:
            values = {
                "tenant_id": tenant_id,
                "env": env,
                "token": secrets.token_urlsafe(32),
                "created_at": self._db.now(),
            }
            conn.execute(self._db.insert_ignore(w, values, ["tenant_id", "env"]))
            return str(conn.execute(sa.select(w.c.token).where(mine)).scalar_one())

    def rotate_webhook_token(self, tenant_id: str, env: str) -> str:
        """Replace the token: the old URL stops working at once."""
        check_env(env)
        self.require_tenant(tenant_id)
        w = self._db.tables.webhook_tokens
        values = {"tenant_id": tenant_id, "env": env, "token": secrets.token_urlsafe(32), "created_at": self._db.now()}
        with self._db.write() as conn:
            conn.execute(self._db.upsert(w, values, ["tenant_id", "env"]))
        return str(values["token"])

    def resolve_webhook_token(self, token: str) -> tuple[str, str] | None:
        """``(tenant_id, env)`` for a webhook URL token, or None."""
        if not isinstance(token, str) or not 20 <= len(token) <= 100:
            return None
        w = self._db.tables.webhook_tokens
        with self._db.read() as conn:
            row = conn.execute(sa.select(w.c.tenant_id, w.c.env, w.c.token).where(w.c.token == token)).first()
        if row is None or not hmac.compare_digest(row.token, token):
            return None
        return str(row.tenant_id), str(row.env)


def records_tenant(tenant_id: str, env: str) -> str:
    """The CircuitDB tenant holding a tenant environment's records: ``<tenant_id>:<env>``."""
    check_env(env)
    return f"{tenant_id}:{env}"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


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
