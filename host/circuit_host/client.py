"""A small client of the server's API, used by ``circuit deploy/promote/rollback/logs``."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from .errors import CircuitError

STREAM_READ_TIMEOUT_S = 60.0  # the stream sends a keepalive every 15 s; silence this long means it broke


class ApiError(CircuitError):
    """The server answered with a problem document."""

    kind = "api_error"


class Client:
    def __init__(self, base_url: str, api_key: str, transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"authorization": f"Bearer {api_key}"},
            timeout=60,
            transport=transport,
            trust_env=False,
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach the server: {exc}") from None
        if response.status_code >= 400:
            raise _problem(response)
        return response.json() if response.content else None

    def upload_bundle(self, path: Path) -> dict[str, Any]:
        data = path.read_bytes()
        result: dict[str, Any] = self._call(
            "POST", "/v1/bundles", content=data, headers={"content-type": "application/zip"}
        )
        return result

    def deploy(self, env: str, circuit: str, version: str) -> list[dict[str, Any]] | dict[str, Any]:
        """The active circuits (dev), or the gate run a gated environment answers with (202)."""
        result: list[dict[str, Any]] | dict[str, Any] = self._call(
            "POST", f"/v1/environments/{env}/deployments", json={"circuit": circuit, "version": version}
        )
        return result

    def gate_run(self, gate_id: int) -> dict[str, Any]:
        """A gated deploy's or promotion's gate run: ``state`` pending, passed, refused or cancelled."""
        result: dict[str, Any] = self._call("GET", f"/v1/gate-runs/{gate_id}")
        return result

    def active_circuits(self, env: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", f"/v1/environments/{env}/circuits")
        return result

    def promote(self, from_env: str, to_env: str, circuit: str | None) -> list[dict[str, Any]] | dict[str, Any]:
        """The target's active circuits (dev), or the gate run a gated target answers with (202)."""
        body: dict[str, Any] = {"from": from_env, "to": to_env}
        if circuit:
            body["circuit"] = circuit
        result: list[dict[str, Any]] | dict[str, Any] = self._call("POST", "/v1/promotions", json=body)
        return result

    def rollback(self, env: str, circuit: str, to_version: str | None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call(
            "POST", f"/v1/environments/{env}/rollback", json={"circuit": circuit, "to_version": to_version}
        )
        return result

    def executions(self, **filters: Any) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v is not None}
        result: dict[str, Any] = self._call("GET", "/v1/executions", params=params)
        return result

    def stream_executions(
        self, logs: bool = True, last_event_id: str | None = None, **filters: Any
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """The live tail (``GET /v1/executions/stream``): ``(event, data)`` as the server sends them,
        ``execution`` then its ``log`` lines. It ends when the server ends the stream; pass the last
        execution's id as ``last_event_id`` to go on from there."""
        params = {k: v for k, v in filters.items() if v is not None}
        params["logs"] = "true" if logs else "false"
        headers = {"accept": "text/event-stream"}
        if last_event_id:
            headers["last-event-id"] = last_event_id
        timeout = httpx.Timeout(60, read=STREAM_READ_TIMEOUT_S)
        try:
            with self._http.stream(
                "GET", "/v1/executions/stream", params=params, headers=headers, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _problem(response)
                event, data = "message", list[str]()
                for line in response.iter_lines():
                    if not line:
                        if data:
                            yield event, json.loads("\n".join(data))
                        event, data = "message", []
                        continue
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "event":
                        event = value
                    elif name == "data":
                        data.append(value)
        except httpx.HTTPError as exc:
            raise ApiError(f"the stream from the server broke off: {exc}") from None

    def execution(self, execution_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/executions/{execution_id}")
        return result

    def settings(self) -> dict[str, Any]:
        """The tenant's settings, secrets as ``{"set": ..., "fingerprint": ...}``."""
        result: dict[str, Any] = self._call("GET", "/v1/settings")
        return result

    def update_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        """A merge patch: each key replaces its setting; ``None`` returns it to its default."""
        result: dict[str, Any] = self._call("PATCH", "/v1/settings", json=changes)
        return result

    def credentials(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/v1/credentials")
        return result

    def put_credential(self, name: str, url: str, headers: dict[str, str]) -> dict[str, Any]:
        body = {"url": url, "headers": headers}
        result: dict[str, Any] = self._call("PUT", f"/v1/credentials/{_segment(name)}", json=body)
        return result

    def delete_credential(self, name: str) -> None:
        self._call("DELETE", f"/v1/credentials/{_segment(name)}")

    def outbox(self, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if state:
            params["state"] = state
        result: list[dict[str, Any]] = self._call("GET", "/v1/outbox", params=params)
        return result

    def retry_outbox_entry(self, entry_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/v1/outbox/{entry_id}/retry")
        return result

    def jobs(self, **filters: Any) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v is not None}
        result: dict[str, Any] = self._call("GET", "/v1/jobs", params=params)
        return result

    def job(self, job_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/jobs/{int(job_id)}")
        return result

    def cancel_job(self, job_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/v1/jobs/{int(job_id)}/cancel")
        return result

    def retry_job(self, job_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/v1/jobs/{int(job_id)}/retry")
        return result

    def inbox(self, **filters: Any) -> dict[str, Any]:
        """Stored webhooks, newest first (``state``: pending, applied, dead)."""
        params = {k: v for k, v in filters.items() if v is not None}
        result: dict[str, Any] = self._call("GET", "/v1/inbox", params=params)
        return result

    def retry_inbox_entry(self, entry_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/v1/inbox/{entry_id}/retry")
        return result

    def start_batch(
        self, circuit: str, env: str, scope: int = 200, query: str | None = None, payload: Any = None
    ) -> dict[str, Any]:
        """A batch of an active circuit (``query`` None: the circuit's batch-start gives it)."""
        body = {"circuit": circuit, "env": env, "scope": scope, "query": query, "payload": payload}
        result: dict[str, Any] = self._call("POST", "/v1/batches", json=body)
        return result

    def batch(self, batch_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/batches/{_segment(batch_id)}")
        return result

    def batches(self, limit: int = 50) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/v1/batches", params={"limit": limit})
        return result

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/v1/batches/{_segment(batch_id)}/cancel")
        return result


def _problem(response: httpx.Response) -> ApiError:
    """The server's problem document as an error in its own words."""
    try:
        problem = response.json()
        message = f"{problem.get('title', 'error')}: {problem.get('detail', '')}".rstrip(": ")
    except ValueError:
        message = response.text[:500]
    return ApiError(f"HTTP {response.status_code}: {message}")


def _segment(text: str) -> str:
    """``text`` as one path segment: a name like ``../keys/x`` must not reach another route."""
    return urllib.parse.quote(text, safe="")
