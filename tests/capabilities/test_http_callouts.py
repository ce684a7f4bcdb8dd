"""http.callout against a real server on loopback: allowlist, charging, timeouts, size caps."""

from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

import msgpack
import pytest

from circuit_host.errors import Rejected
from circuit_host.execution.callout_policy import HostPattern, NamedCredential
from circuit_host.execution.executions import ExecutionOptions, ExecutionRecord, Executor
from circuit_host.execution.limits import LimitsProfile
from tests.conftest import LoopbackServer, reply, slow_reply

Load = Callable[[str], Any]


def callout(
    executor: Executor, load_guest: Load, request: dict[str, Any], allow: list[str], **limits: int
) -> ExecutionRecord:
    options = ExecutionOptions(
        limits=LimitsProfile().with_overrides(limits),
        allowed_hosts=tuple(HostPattern.parse(p) for p in allow),
    )
    return executor.run(load_guest("callout_proxy"), msgpack.packb(request), options)


def test_allowed_callout_reaches_the_server(executor: Executor, load_guest: Load, loopback: LoopbackServer) -> None:
    loopback.routes["/census"] = reply(200, msgpack.packb({"94105": 120000}), "application/msgpack")
    record = callout(
        executor,
        load_guest,
        {"method": "POST", "url": f"{loopback.base}/census", "headers": {"x-k": "v"}, "body": b"\x01\x02"},
        [loopback.base],
    )
    assert record.status == "ok", record.error
    assert record.output["status"] == 200
    assert msgpack.unpackb(record.output["body"]) == {"94105": 120000}
    assert record.output["headers"]["content-type"] == "application/msgpack"
    assert loopback.requests == [("POST", "/census", b"\x01\x02")]
    assert record.usage["callouts"].used == 1


def test_non_2xx_status_is_still_ok(executor: Executor, load_guest: Load, loopback: LoopbackServer) -> None:
    record = callout(executor, load_guest, {"method": "GET", "url": f"{loopback.base}/missing"}, [loopback.base])
    assert record.status == "ok"
    assert record.output["status"] == 404


@pytest.mark.parametrize(
    "allow",
    [
        [],  # empty allowlist: no outbound access at all
        ["http://example.com"],
        ["https://127.0.0.1"],  # wrong scheme
        ["http://127.0.0.1:1"],  # wrong port
    ],
)
def test_url_outside_the_allowlist_is_err_and_never_leaves_the_host(
    executor: Executor, load_guest: Load, loopback: LoopbackServer, allow: list[str]
) -> None:
    loopback.routes["/x"] = reply(200, b"secret")
    record = callout(executor, load_guest, {"method": "GET", "url": f"{loopback.base}/x"}, allow)
    assert record.status == "error"  # the guest received err and returned it
    assert "is not allowed" in record.error["message"]
    assert loopback.requests == []
    assert record.usage["callouts"].used == 1  # refused callouts still count


def test_wildcard_patterns_match_subdomains_only() -> None:
    import httpx

    pattern = HostPattern.parse("https://*.example.com")
    assert pattern.matches(httpx.URL("https://api.example.com/v1"))
    assert not pattern.matches(httpx.URL("https://example.com/"))
    assert not pattern.matches(httpx.URL("https://evil-example.com/"))
    assert not pattern.matches(httpx.URL("https://api.example.com.evil.net/"))


@pytest.mark.parametrize("text", ["ftp://x.com", "https://x.com/path", "https://user:pw@x.com", "not a url"])
def test_bad_allowlist_patterns_are_rejected(text: str) -> None:
    with pytest.raises(Rejected):
        HostPattern.parse(text)


def test_redirects_are_not_followed(executor: Executor, load_guest: Load, loopback: LoopbackServer) -> None:
    def redirect(request: BaseHTTPRequestHandler) -> None:
        request.send_response(302)
        request.send_header("location", "http://example.com/steal")
        request.send_header("content-length", "0")
        request.end_headers()

    loopback.routes["/r"] = redirect
    record = callout(executor, load_guest, {"method": "GET", "url": f"{loopback.base}/r"}, [loopback.base])
    assert record.output["status"] == 302
    assert len(loopback.requests) == 1


def test_callout_timeout_is_a_catchable_err(executor: Executor, load_guest: Load, loopback: LoopbackServer) -> None:
    loopback.routes["/slow"] = slow_reply(1.0)
    record = callout(
        executor, load_guest, {"method": "GET", "url": f"{loopback.base}/slow", "timeout_ms": 200}, [loopback.base]
    )
    assert record.status == "error"
    assert "timed out" in record.error["message"]
    assert 150 <= record.usage["callout_time_ms"].used < 900


def test_callout_is_bounded_by_the_callout_time_budget(
    executor: Executor, load_guest: Load, loopback: LoopbackServer
) -> None:
    loopback.routes["/slow"] = slow_reply(4.0)
    record = callout(
        executor, load_guest, {"method": "GET", "url": f"{loopback.base}/slow"}, [loopback.base], callout_time_ms=200
    )
    assert record.status == "limit_exceeded"
    assert record.error["resource"] == "callout_time_ms"
    assert record.duration_ms < 2_500  # cut off near 200 ms, not after the 4 s answer (slack for a busy machine)


def test_callout_is_bounded_by_the_execution_deadline(
    executor: Executor, load_guest: Load, loopback: LoopbackServer
) -> None:
    loopback.routes["/slow"] = slow_reply(4.0)
    record = callout(
        executor, load_guest, {"method": "GET", "url": f"{loopback.base}/slow"}, [loopback.base], timeout_ms=300
    )
    assert record.status == "timeout"
    assert record.duration_ms < 2_500  # cut off near 300 ms, not after the 4 s answer


def test_response_over_the_size_cap_is_err(executor: Executor, load_guest: Load, loopback: LoopbackServer) -> None:
    loopback.routes["/big"] = reply(200, b"x" * (5 * 1024 * 1024))
    record = callout(executor, load_guest, {"method": "GET", "url": f"{loopback.base}/big"}, [loopback.base])
    assert record.status == "error"
    assert "exceeds the cap" in record.error["message"]


def test_connection_refused_is_err(executor: Executor, load_guest: Load) -> None:
    record = callout(executor, load_guest, {"method": "GET", "url": "http://127.0.0.1:1/"}, ["http://127.0.0.1:1"])
    assert record.status == "error"
    assert "failed" in record.error["message"]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"url": "http://127.0.0.1/"}, "method must be one of"),
        ({"method": "TRACE", "url": "http://127.0.0.1/"}, "method must be one of"),
        ({"method": "GET"}, "url must be a string"),
        ({"method": "GET", "url": "http://127.0.0.1/", "headers": {"a": 1}}, "headers must be"),
        ({"method": "GET", "url": "http://127.0.0.1/", "body": 5}, "body must be"),
        ({"method": "GET", "url": "http://127.0.0.1/", "timeout_ms": -1}, "timeout_ms must be"),
        ({"method": "GET", "url": "http://127.0.0.1/", "proxy": "x"}, "unknown request field"),
        ([1, 2], "request must be a map"),
    ],
)
def test_malformed_requests_are_catchable_errs(
    executor: Executor, load_guest: Load, request_: Any, message: str
) -> None:
    options = ExecutionOptions(allowed_hosts=(HostPattern.parse("http://127.0.0.1"),))
    record = executor.run(load_guest("callout_proxy"), msgpack.packb(request_), options)
    assert record.status == "error"
    assert message in record.error["message"]


def test_callout_over_the_limit_traps_before_any_request(executor: Executor, load_guest: Load) -> None:
    record = callout(executor, load_guest, {"method": "GET", "url": "http://nope.invalid/"}, [], callouts=0)
    assert record.status == "limit_exceeded"
    assert record.error["resource"] == "callouts"


def test_named_credentials_add_the_secret_the_guest_never_sees(
    executor: Executor, load_guest: Load, loopback: LoopbackServer
) -> None:
    seen: list[dict[str, str]] = []

    def census(request: BaseHTTPRequestHandler) -> None:
        seen.append({"path": request.path, "authorization": request.headers.get("authorization", "")})
        reply(200, b"ok")(request)

    loopback.routes["/v2/zip"] = census
    credential = NamedCredential(url=f"{loopback.base}/v2", headers={"authorization": "Bearer s3cret"})
    options = ExecutionOptions(credentials={"census": credential})  # note: no allowlist entry at all
    request = {"method": "GET", "url": "callout:census/zip?code=94105", "headers": {"Authorization": "Bearer mine"}}
    record = executor.run(load_guest("callout_proxy"), msgpack.packb(request), options)
    assert record.status == "ok", record.error
    assert seen == [{"path": "/v2/zip?code=94105", "authorization": "Bearer s3cret"}]
    assert "s3cret" not in record.debug_log

    unknown = {"method": "GET", "url": "callout:payroll/export"}
    refused = executor.run(load_guest("callout_proxy"), msgpack.packb(unknown), options)
    assert refused.status == "error"
    assert "no named credential 'payroll'" in refused.error["message"]
    assert len(seen) == 1


def _capture(seen: list[dict[str, str]]) -> Callable[[BaseHTTPRequestHandler], None]:
    def handler(request: BaseHTTPRequestHandler) -> None:
        seen.append({"path": request.path, **{k.lower(): v for k, v in request.headers.items()}})
        reply(200, b"ok")(request)

    return handler


def test_the_guest_cannot_choose_the_host_or_hop_by_hop_headers(
    executor: Executor, load_guest: Load, loopback: LoopbackServer
) -> None:
    seen: list[dict[str, str]] = []
    loopback.routes["/v2/zip"] = _capture(seen)
    credential = NamedCredential(url=f"{loopback.base}/v2", headers={"authorization": "Bearer s3cret"})
    headers = {
        "Host": "admin.internal",
        "Connection": "close, authorization",
        "Proxy-Authorization": "Basic eA==",
        "Keep-Alive": "timeout=5",
        "Upgrade": "h2c",
        "x-ok": "kept",
    }
    request = {"method": "GET", "url": "callout:census/zip", "headers": headers}
    record = executor.run(
        load_guest("callout_proxy"), msgpack.packb(request), ExecutionOptions(credentials={"census": credential})
    )
    assert record.status == "ok", record.error
    (got,) = seen
    assert got["host"] == f"127.0.0.1:{loopback.port}"  # the secret goes to the credential's own host
    assert got["authorization"] == "Bearer s3cret" and got["x-ok"] == "kept"
    assert "proxy-authorization" not in got and "upgrade" not in got and "keep-alive" not in got
    assert got.get("connection", "keep-alive") == "keep-alive"


@pytest.mark.parametrize(
    "path",
    [
        "../../../admin/keys",
        "zip/../../admin/keys",
        "%2e%2e/%2e%2e/admin/keys",
        "%2E%2E/admin",
        "%252e%252e/admin",
        "..%2fadmin",
        "..\\admin",
        "zip%5c..%5cadmin",
        "./zip",
    ],
)
def test_a_named_credential_path_cannot_leave_its_base(
    executor: Executor, load_guest: Load, loopback: LoopbackServer, path: str
) -> None:
    seen: list[dict[str, str]] = []
    loopback.routes["/admin/keys"] = _capture(seen)
    loopback.routes["/admin"] = _capture(seen)
    credential = NamedCredential(url=f"{loopback.base}/v2/api", headers={"authorization": "Bearer s3cret"})
    request = {"method": "GET", "url": f"callout:census/{path}"}
    record = executor.run(
        load_guest("callout_proxy"), msgpack.packb(request), ExecutionOptions(credentials={"census": credential})
    )
    assert record.status == "error"
    assert "must not contain '.' or '..' segments or backslashes" in record.error["message"]
    assert seen == [] and loopback.requests == []


@pytest.mark.parametrize("route", ["/v2/down", "/v2/slow"])
def test_errors_name_the_credential_never_its_url_or_secrets(
    executor: Executor, load_guest: Load, loopback: LoopbackServer, route: str
) -> None:
    loopback.routes["/v2/slow"] = slow_reply(1.0)
    base = "http://svc-user:hunter2@127.0.0.1:1/v2" if route == "/v2/down" else f"{loopback.base}/v2"
    base = base.replace("http://", "http://svc-user:hunter2@") if route == "/v2/slow" else base
    credential = NamedCredential(url=base, headers={"x-api-key": "k3y-s3cret"})
    request = {"method": "GET", "url": f"callout:census/{route.rsplit('/', 1)[1]}", "timeout_ms": 200}
    record = executor.run(
        load_guest("callout_proxy"), msgpack.packb(request), ExecutionOptions(credentials={"census": credential})
    )
    assert record.status == "error"
    message = record.error["message"]
    assert message.startswith("GET callout:census/")
    everything = message + record.debug_log + str(record.to_json())
    for secret in ("svc-user", "hunter2", "k3y-s3cret", "127.0.0.1", "/v2"):
        assert secret not in everything
