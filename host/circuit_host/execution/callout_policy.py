"""Where a circuit may call out: the allowlist, the named credentials, and the connector to use.

The policy of one execution (or one deployed circuit fired as a trigger), built from configuration
by the host, never by a guest. The ``http`` capability consults it; it knows nothing of wasm.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ..connectors.callout_destinations import Network
from ..connectors.http_client import CalloutRequest, HttpConnector
from ..errors import CalloutError, Rejected

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
CREDENTIAL_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$"  # a named credential's name, in manifests and settings
HEADER_NAME_PATTERN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")  # an HTTP token (RFC 9110)
NAMED_PREFIX = "callout:"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class NamedCredential(BaseModel):
    """An endpoint and the secret headers that authenticate to it, configured by the operator."""

    model_config = ConfigDict(frozen=True)

    url: str = Field(pattern=r"^https?://[^/?#]+(/[^?#]*)?$", description="base URL, e.g. https://api.example.com/v2")
    headers: dict[str, SecretStr] = Field(default_factory=dict, description="e.g. {authorization: Bearer ...}")

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, headers: dict[str, SecretStr]) -> dict[str, SecretStr]:
        """Refuse now what every callout would fail on later (and a value smuggling a second header)."""
        for name, value in headers.items():
            if not HEADER_NAME_PATTERN.match(name):
                raise ValueError(f"header name {name[:100]!r} is not an HTTP header name")
            if any(ch in value.get_secret_value() for ch in "\r\n\0"):
                raise ValueError(f"header {name!r}: the value must not contain CR, LF or NUL")
        return headers

    @property
    def header_names(self) -> frozenset[str]:
        return frozenset(name.lower() for name in self.headers)

    @property
    def shown_url(self) -> str:
        """The URL with any userinfo password replaced by ``****``: fit to show an operator."""
        parts = urllib.parse.urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = f"{parts.username}:****@{parts.netloc.rpartition('@')[2]}"
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))

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


@dataclass(frozen=True)
class ResolvedCallout:
    """A request ready for the connector, and how to name it to the guest and in logs.

    ``label`` is the guest's own ``callout:NAME/path`` for a named credential: the endpoint,
    its userinfo and its headers are the operator's and never appear in a message.
    """

    request: CalloutRequest
    url: httpx.URL
    label: str
    credential: str | None


@dataclass
class CalloutSession:
    """Per-execution callout state: the allowlist, the named credentials, the private networks
    the operator let this tenant reach (``callout_allowed_networks``) and the connector to use."""

    connector: HttpConnector
    allowed: tuple[HostPattern, ...] = field(default_factory=tuple)
    max_response_bytes: int = MAX_RESPONSE_BYTES
    credentials: Mapping[str, NamedCredential] = field(default_factory=dict)
    allowed_networks: tuple[Network, ...] = field(default_factory=tuple)

    def allows(self, url: httpx.URL) -> bool:
        return any(pattern.matches(url) for pattern in self.allowed)

    def resolve(self, request: CalloutRequest) -> ResolvedCallout:
        """Expand ``callout:NAME/path`` with the named credential's endpoint and secret headers.

        The secret never crosses the ABI: the guest names the credential, the host adds it,
        overriding any header of the same name the guest set. The path stays under the
        credential's base URL: dot segments and backslashes, encoded or not, are refused.
        """
        if not request.url.startswith(NAMED_PREFIX):
            try:
                url = httpx.URL(request.url)
            except httpx.InvalidURL as exc:
                raise CalloutError(f"invalid url {request.url!r}: {exc}") from None
            label = f"{request.method} {url.scheme}://{url.netloc.decode('ascii')}{url.path}"  # no userinfo
            return ResolvedCallout(request, url, label, None)
        name, _, rest = request.url[len(NAMED_PREFIX) :].partition("/")
        label = f"{request.method} {NAMED_PREFIX}{name}/{rest.partition('?')[0].partition('#')[0]}"
        credential = self.credentials.get(name)
        if credential is None:
            raise CalloutError(f"no named credential {name!r} is available to this circuit")
        _check_relative_path(label, rest)
        base = httpx.URL(credential.url)
        try:
            url = httpx.URL(credential.url.rstrip("/") + ("/" + rest if rest else ""))
        except httpx.InvalidURL:
            raise CalloutError(f"invalid url {label!r}") from None
        base_path = base.path.rstrip("/")
        if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port) or not (
            url.path == base_path or url.path.startswith(base_path + "/")
        ):
            raise CalloutError(f"{label}: the path must stay under the credential {name!r}")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in credential.header_names}
        headers.update(credential.secret_headers())
        return ResolvedCallout(CalloutRequest(request.method, str(url), headers, request.body), url, label, name)


def _check_relative_path(label: str, rest: str) -> None:
    """Refuse a path that could climb out of the credential's base once a server decodes it."""
    path = rest.partition("?")[0].partition("#")[0]
    decoded = path
    for _ in range(4):  # %252e%252e is %2e%2e is ..
        decoded, previous = urllib.parse.unquote(decoded), decoded
        if decoded == previous:
            break
    segments = decoded.split("/")
    if "\\" in decoded or any(segment in (".", "..") for segment in segments) or "\x00" in decoded:
        raise CalloutError(f"{label}: the path must not contain '.' or '..' segments or backslashes")
