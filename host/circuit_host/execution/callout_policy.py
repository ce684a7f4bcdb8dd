"""Where a circuit may call out: the allowlist, the named credentials, and the connector to use.

The policy of one execution (or one deployed circuit fired as a trigger), built from configuration
by the host, never by a guest. The ``http`` capability consults it; it knows nothing of wasm.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ..connectors.http_client import CalloutRequest, HttpConnector
from ..errors import CalloutError, Rejected

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
NAMED_PREFIX = "callout:"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class NamedCredential(BaseModel):
    """An endpoint and the secret headers that authenticate to it, configured by the operator."""

    model_config = ConfigDict(frozen=True)

    url: str = Field(pattern=r"^https?://[^/?#]+(/[^?#]*)?$", description="base URL, e.g. https://api.example.com/v2")
    headers: dict[str, SecretStr] = Field(default_factory=dict, description="e.g. {authorization: Bearer ...}")

    @property
    def header_names(self) -> frozenset[str]:
        return frozenset(name.lower() for name in self.headers)

    def secret_headers(self) -> dict[str, str]:
        return {name: value.get_secret_value() for name, value in self.headers.items()}


@dataclass(frozen=True)
class HostPattern:
    """One allowlist entry: ``scheme://host[:port]``; ``*.example.com`` matches subdomains only."""

    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        try:
            url = httpx.URL(text.replace("*.", "wildcard-marker.", 1))
        except httpx.InvalidURL as exc:
            raise Rejected(f"allowed host {text!r}: {exc}") from None
        if url.scheme not in _DEFAULT_PORTS or not url.host:
            raise Rejected(f"allowed host {text!r} must look like https://host[:port]")
        if url.path not in ("", "/") or url.query or url.fragment or url.userinfo:
            raise Rejected(f"allowed host {text!r} must not contain a path, query or credentials")
        host = url.host.replace("wildcard-marker.", "*.", 1)
        return cls(url.scheme, host, url.port or _DEFAULT_PORTS[url.scheme])

    def matches(self, url: httpx.URL) -> bool:
        port = url.port or _DEFAULT_PORTS.get(url.scheme, -1)
        if url.scheme != self.scheme or port != self.port:
            return False
        if self.host.startswith("*."):
            return url.host.endswith(self.host[1:]) and url.host != self.host[2:]
        return url.host == self.host


@dataclass
class CalloutSession:
    """Per-execution callout state: the allowlist, the named credentials and the connector to use."""

    connector: HttpConnector
    allowed: tuple[HostPattern, ...] = field(default_factory=tuple)
    max_response_bytes: int = MAX_RESPONSE_BYTES
    credentials: Mapping[str, NamedCredential] = field(default_factory=dict)

    def allows(self, url: httpx.URL) -> bool:
        return any(pattern.matches(url) for pattern in self.allowed)

    def resolve(self, request: CalloutRequest) -> tuple[CalloutRequest, bool]:
        """Expand ``callout:NAME/path`` with the named credential's endpoint and secret headers.

        The secret never crosses the ABI: the guest names the credential, the host adds it,
        overriding any header of the same name the guest set. Returns the request and whether
        it went through a credential (its endpoint is then allowed by configuration).
        """
        if not request.url.startswith(NAMED_PREFIX):
            return request, False
        name, _, rest = request.url[len(NAMED_PREFIX) :].partition("/")
        credential = self.credentials.get(name)
        if credential is None:
            raise CalloutError(f"no named credential {name!r} is available to this circuit")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in credential.header_names}
        headers.update(credential.secret_headers())
        url = credential.url.rstrip("/") + ("/" + rest if rest else "")
        return CalloutRequest(request.method, url, headers, request.body), True
