"""Secrets at rest: AES-256-GCM under the host's master key, bound to where each value is stored.

A sealed value reads ``cs1.<key id>.<base64url(nonce | ciphertext | tag)>``. The key id (8 hex
digits of a hash of the key) names the key that sealed it, so a database can hold values of two
keys while a rotation runs, and a wrong key is reported as a wrong key rather than as damaged data.
The associated data is the format, the key id and a *context* naming the row and column
(``tenant-settings:acme``), so a value copied into another tenant's row does not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import CircuitError

FORMAT = "cs1"
KEY_BYTES = 32
NONCE_BYTES = 12
_SEALED = re.compile(r"^cs1\.([0-9a-f]{8})\.([A-Za-z0-9_-]+)$")


class SecretsError(CircuitError):
    """Secrets cannot be read or written as configured."""

    kind = "secrets"


class MasterKeyError(SecretsError):
    """The master key is malformed, missing, or not the one the data was sealed with."""

    kind = "master_key"


class SealedValueError(SecretsError):
    """A stored value does not open: damaged, moved from another row, or never sealed."""

    kind = "sealed_value"


@dataclass(frozen=True)
class MasterKey:
    """32 random bytes and where they came from (for messages: an environment variable, a file)."""

    material: bytes = field(repr=False)
    source: str = "generated"

    def __post_init__(self) -> None:
        if len(self.material) != KEY_BYTES:
            raise MasterKeyError(f"the master key from {self.source} must be {KEY_BYTES} bytes")

    @classmethod
    def generate(cls, source: str = "generated") -> MasterKey:
        return cls(os.urandom(KEY_BYTES), source)

    @classmethod
    def parse(cls, text: str, source: str) -> MasterKey:
        """A key as url-safe base64 of 32 bytes (as ``encoded()`` and ``circuit secrets generate-key`` write it)."""
        cleaned = text.strip()
        try:
            material = base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
        except (binascii.Error, ValueError):
            material = b""
        if len(material) != KEY_BYTES or not re.fullmatch(r"[A-Za-z0-9_-]+=*", cleaned):
            raise MasterKeyError(
                f"the master key from {source} is not {KEY_BYTES} bytes in url-safe base64 "
                "(43 characters; make one with `circuit secrets generate-key`)"
            )
        return cls(material, source)

    def encoded(self) -> str:
        return base64.urlsafe_b64encode(self.material).decode().rstrip("=")

    @property
    def id(self) -> str:
        return hashlib.sha256(b"circuit-master-key-id\0" + self.material).hexdigest()[:8]

    def describe(self) -> str:
        return f"master key {self.id} (from {self.source})"


class SecretBox:
    """Seals with its current key; opens values sealed by any key it holds (the previous one, mid-rotation)."""

    def __init__(self, current: MasterKey, *others: MasterKey) -> None:
        self.current = current
        self._keys = {k.id: k for k in (*others, current)}
        self._ciphers = {kid: AESGCM(k.material) for kid, k in self._keys.items()}
        self._fingerprint_key = hmac.new(current.material, b"circuit-secret-fingerprint", hashlib.sha256).digest()

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def key(self, key_id: str) -> MasterKey | None:
        return self._keys.get(key_id)

    def fingerprint(self, secret: str) -> str:
        """12 hex digits telling an operator which secret is set: keyed by the master key, so a
        fingerprint shown by the API cannot be used to test guesses of a weak secret offline."""
        return hmac.new(self._fingerprint_key, secret.encode(), hashlib.sha256).hexdigest()[:12]

    def seal(self, plaintext: bytes, context: str) -> str:
        kid = self.current.id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[kid].encrypt(nonce, plaintext, _associated(kid, context))
        return f"{FORMAT}.{kid}.{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"

    def open(self, value: str, context: str) -> bytes:
        """The plaintext of a sealed value; ``MasterKeyError`` if another key sealed it, else
        ``SealedValueError`` if it is not a sealed value or does not open in this context."""
        match = _SEALED.match(value)
        if match is None:
            raise SealedValueError(f"{context} is not encrypted")
        kid, body = match.groups()
        cipher = self._ciphers.get(kid)
        if cipher is None:
            held = ", ".join(k.describe() for k in self._keys.values())
            raise MasterKeyError(
                f"{context} is encrypted under master key {kid}, but this host has {held}: "
                "start it with the master key the data was written with"
            )
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        try:
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _associated(kid, context))
        except (InvalidTag, ValueError):
            raise SealedValueError(
                f"{context} does not decrypt under master key {kid}: it was damaged or copied from another row"
            ) from None


def is_sealed(value: str) -> bool:
    return _SEALED.match(value) is not None


def sealed_key_id(value: str) -> str | None:
    """The id of the key that sealed ``value``, or None if it is not a sealed value."""
    match = _SEALED.match(value)
    return match.group(1) if match else None


def _associated(key_id: str, context: str) -> bytes:
    return f"{FORMAT}.{key_id}.{context}".encode()
