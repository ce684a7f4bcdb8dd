"""The HTTP edge shared by the CRM connectors: one ``httpx.Client`` and one error taxonomy.

Every failure is classified once, here: credentials refused (``CrmAuthError``), the CRM busy
or unreachable (``CrmUnavailable``, with the ``Retry-After`` it asked for), or a request it
rejected (``CrmRequestError``, with its status and body). Callers decide what each means:
inside an execution the first two fail the execution; in the outbox they are retried.
"""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import httpx

from ...errors import CircuitError

_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_ERROR_TEXT = 500


class CrmError(CircuitError):
    """A CRM could not serve the host; it ends the execution (a guest cannot handle it)."""

    kind = "crm_error"


class CrmAuthError(CrmError):
    """The CRM refused the configured credentials (HTTP 401/403)."""

    kind = "crm_auth_error"


class CrmUnavailable(CrmError):
    """Rate limited (429), a server error (5xx) or no connection: worth retrying later."""

    kind = "crm_unavailable"

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CrmRequestError(CrmError):
    """The CRM answered 4xx to a request; ``body`` is its parsed JSON (or text)."""

    def __init__(self, message: str, status: int, body: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:_MAX_ERROR_TEXT]


def shorten(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 3] + "..."


class ApiClient:
    """Requests to one CRM. The client never follows redirects nor reads proxy settings."""

    def __init__(self, name: str, base_url: str, timeout_s: float, transport: httpx.BaseTransport | None) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(timeout_s),
            headers={"user-agent": "circuit-script/1", "accept": "application/json"},
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        params: dict[str, str] | None = None,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        accept: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        """Send one request; return a 2xx response (or one whose status is in ``accept``)."""
        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        try:
            response = self._client.request(method, url, headers=headers, params=params, json=json_body, data=form)
        except httpx.HTTPError as exc:
            raise CrmUnavailable(f"{self.name}: {method} {path} failed: {type(exc).__name__}: {exc}") from None
        status = response.status_code
        if status < 300 or status in accept:
            return response
        body = body_of(response)
        where = f"{self.name}: {method} {path.split('?')[0]} answered {status}"
        if status in (401, 403):
            raise CrmAuthError(f"{where}: the configured credentials were refused: {shorten(body)}")
        if status in _RETRYABLE_STATUS:
            raise CrmUnavailable(f"{where}: {shorten(body)}", retry_after(response.headers.get("retry-after")))
        raise CrmRequestError(f"{where}: {shorten(body)}", status, body)

    def close(self) -> None:
        self._client.close()
