"""What an operator sees of a running server: /metrics, request ids, trace context, probes, JSON logs.

A real uvicorn server on loopback (``tests/server/conftest.py``), driven over HTTP.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import uvicorn
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from circuit_host.jobs import JobRequest
from circuit_host.migrations import control_plane
from circuit_host.observability import ObservabilitySettings, Telemetry
from circuit_host.observability import probes as probes_module
from circuit_host.server import ServerSettings, create_app
from circuit_host.server.state import ServerState
from circuit_host.settings import configure_logging
from tests.server.conftest import LiveServer, Tenant, applied, gate_verdict, serve
from tests.server.routers.conftest import generic_event, generic_signed

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


def start(tmp_path: Path, **observability: Any) -> tuple[ServerState, ServerSettings]:
    settings = ServerSettings(data_dir=tmp_path / "data", observability=ObservabilitySettings(**observability))
    return ServerState(settings), settings


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    state, settings = start(tmp_path)
    try:
        yield from serve(state, settings)
    finally:
        state.close()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(server: LiveServer) -> str:
    answer = httpx.get(f"{server.url}/metrics", trust_env=False)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text


def webhook_path(tenant: Tenant, server: LiveServer) -> str:
    with tenant.client(server) as admin:
        url: str = admin.get("/v1/environments/production/webhooks").json()["urls"]["generic"]
    return httpx.URL(url).path


def test_metrics_count_executions_webhooks_and_requests_by_route_without_ids_or_tokens(live: LiveServer) -> None:
    acme = live.tenant("acme")
    path = webhook_path(acme, live)
    token = path.rsplit("/", 1)[1]
    with acme.client(live) as admin, httpx.Client(base_url=live.url, trust_env=False) as anonymous:
        written = admin.post("/v1/records/Contact", json={"records": [{"LastName": "Api"}]})
        assert written.status_code == 200 and written.json()["execution"]["status"] == "ok", written.text
        raw, headers = generic_signed(generic_event({"LastName": "Hook"}, event_id="evt-1"))
        accepted = anonymous.post(path, content=raw, headers=headers)
        assert anonymous.post(path, content=raw, headers=headers).json() == {"duplicate": True}  # the same delivery
        applied(admin, accepted)  # the execution has run: counted below
        tampered = {**headers, "x-circuit-signature": "t=1,v1=00"}
        assert anonymous.post(path, content=raw, headers=tampered).status_code == 401
        assert anonymous.post("/v1/hooks/generic/not-a-token", content=raw, headers=headers).status_code == 404
        assert anonymous.post(f"/v1/hooks/nonsense-{token}", content=raw, headers=headers).status_code in (401, 404)
    text = scrape(live)
    found = samples(text)
    execution = {"tenant": acme.id, "environment": "production", "circuit": "-"}
    assert (
        found[("circuit_executions_total", frozenset({**execution, "trigger_kind": "api", "status": "ok"}.items()))]
        == 1
    )
    assert (
        found[("circuit_executions_total", frozenset({**execution, "trigger_kind": "generic", "status": "ok"}.items()))]
        == 1
    )
    assert found[("circuit_execution_duration_seconds_count", frozenset(execution.items()))] == 2
    assert found[("circuit_host_calls_total", frozenset({"kind": "dml", "outcome": "ok"}.items()))] == 2
    webhooks = {k[1]: v for k, v in found.items() if k[0] == "circuit_webhooks_total"}
    assert webhooks == {
        frozenset({"source": "generic", "outcome": "accepted", "reason": ""}.items()): 1,
        frozenset({"source": "generic", "outcome": "duplicate", "reason": ""}.items()): 1,
        frozenset({"source": "generic", "outcome": "refused", "reason": "bad_signature"}.items()): 1,
        frozenset({"source": "generic", "outcome": "refused", "reason": "unknown_token"}.items()): 1,
    }
    route = {"method": "POST", "route": "/v1/records/{object_name}", "status": "200"}
    assert found[("circuit_http_requests_total", frozenset(route.items()))] == 1
    for status in ("202", "200"):
        hooks = {"method": "POST", "route": "/v1/hooks/{source}/{token}", "status": status}
        assert found[("circuit_http_requests_total", frozenset(hooks.items()))] == 1
    assert found[("circuit_governor_usage_ratio_count", frozenset({"resource": "dml_rows"}.items()))] == 2
    assert token not in text and "not-a-token" not in text and "nonsense" not in text  # templates, not paths
    assert written.json()["execution"]["id"] not in text  # no execution ids


def test_deploys_promotions_rollbacks_and_gate_verdicts_are_counted(
    live: LiveServer, vlpr_bundles: dict[str, Path]
) -> None:
    acme = live.tenant("acme")
    with acme.client(live) as admin:
        for version in ("1.0.0", "1.1.0"):
            assert admin.post("/v1/bundles", content=vlpr_bundles[version].read_bytes()).status_code == 201
            deployed = admin.post(
                "/v1/environments/dev/deployments", json={"circuit": "virtual_lpr", "version": version}
            )
            assert deployed.status_code == 200, deployed.text
        assert admin.post("/v1/environments/dev/rollback", json={"circuit": "virtual_lpr"}).status_code == 200
        admin.post("/v1/records/Contact?env=dev", json={"records": [{"LastName": "Scored"}]})
        promoted = admin.post("/v1/promotions", json={"from_env": "dev", "to_env": "staging"})  # runs the gate
        assert gate_verdict(admin, promoted)["state"] == "passed"
    found = samples(scrape(live))
    labels = frozenset({"tenant": acme.id, "environment": "dev"}.items())
    assert found[("circuit_deploys_total", labels)] == 2
    assert found[("circuit_rollbacks_total", labels)] == 1
    staging = {"tenant": acme.id, "environment": "staging"}
    assert found[("circuit_promotions_total", frozenset(staging.items()))] == 1
    assert found[("circuit_gate_verdicts_total", frozenset({**staging, "verdict": "passed"}.items()))] == 1
    execution = {"tenant": acme.id, "environment": "dev", "circuit": "virtual_lpr", "trigger_kind": "api"}
    assert found[("circuit_executions_total", frozenset({**execution, "status": "ok"}.items()))] == 1
    assert found[("circuit_trigger_runs_total", frozenset({"outcome": "ok"}.items()))] == 1


def test_metrics_are_refused_outside_the_allowed_networks(tmp_path: Path) -> None:
    state, settings = start(tmp_path, metrics_allowed_networks=("10.0.0.0/8",))
    try:
        for server in serve(state, settings):
            answer = httpx.get(f"{server.url}/metrics", trust_env=False)
            assert answer.status_code == 403
            assert "circuit_" not in answer.text
    finally:
        state.close()


def test_allowed_networks_match_addresses_not_strings() -> None:
    telemetry = Telemetry(ObservabilitySettings(metrics_allowed_networks=("127.0.0.0/8", "10.1.0.0/16")))
    assert telemetry.may_scrape("127.0.0.1") and telemetry.may_scrape("10.1.2.3")
    assert telemetry.may_scrape("::ffff:10.1.2.3")  # an IPv4 client on a dual-stack socket
    assert not telemetry.may_scrape("10.2.0.1") and not telemetry.may_scrape("203.0.113.9")
    assert not telemetry.may_scrape("testclient") and not telemetry.may_scrape(None)
    with pytest.raises(ValueError, match="not a network"):
        ObservabilitySettings(metrics_allowed_networks=("loopback",))


def test_multiprocess_metrics_need_prometheus_in_multiprocess_mode(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="PROMETHEUS_MULTIPROC_DIR"):
        Telemetry(ObservabilitySettings(metrics_multiprocess_dir=tmp_path))


def test_a_request_id_is_echoed_and_a_hostile_one_replaced(live: LiveServer) -> None:
    given = httpx.get(f"{live.url}/livez", headers={"x-request-id": "req-42.a:b"}, trust_env=False)
    assert given.headers["x-request-id"] == "req-42.a:b"
    for hostile in ('x" level="error', "a" * 200, "tab\tinside"):
        answer = httpx.get(f"{live.url}/livez", headers={"x-request-id": hostile}, trust_env=False)
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"]), hostile
    fresh = httpx.get(f"{live.url}/v1/no-such-route", trust_env=False)
    assert fresh.status_code == 404 and re.fullmatch(r"[0-9a-f]{32}", fresh.headers["x-request-id"])


def test_the_callers_traceparent_reaches_the_stored_execution(tmp_path: Path) -> None:
    state, settings = start(tmp_path)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    state.telemetry = Telemetry(settings.observability, provider)  # as circuit serve does with OTEL_* set
    try:
        for server in serve(state, settings):
            acme = server.tenant("acme")
            with acme.client(server) as admin:
                written = admin.post(
                    "/v1/records/Contact",
                    json={"records": [{"LastName": "Traced"}]},
                    headers={"traceparent": TRACEPARENT},
                )
                execution_id = written.json()["execution"]["id"]
                stored = admin.get(f"/v1/executions/{execution_id}").json()
    finally:
        state.close()
    assert stored["trace_id"] == TRACE_ID  # stored with the execution (cs_executions.trace_id)
    assert f"trace {TRACE_ID}" in stored["debug_log"].splitlines()[0]
    spans = {s.name: s for s in exporter.get_finished_spans()}
    request = spans["POST /v1/records/{object_name}"]
    assert trace.format_trace_id(request.context.trace_id) == TRACE_ID
    assert request.parent is not None and trace.format_span_id(request.parent.span_id) == "b7ad6b7169203331"
    assert spans["circuit.execution"].parent.span_id == request.context.span_id  # type: ignore[union-attr]
    assert dict(request.attributes or {})["http.response.status_code"] == 200


def test_readyz_checks_database_and_migrations_and_names_a_failing_check(live: LiveServer) -> None:
    ready = httpx.get(f"{live.url}/readyz", trust_env=False)
    assert ready.status_code == 200
    checks = {"database": "ok", "migrations": "ok", "workers": "ok"}  # workers: the in-process job worker runs
    assert ready.json() == {"status": "ready", "checks": checks, "failing": []}
    live.state.telemetry.add_readiness_check("workers", lambda: "no job worker seen for 60 s")
    live.state.telemetry.add_readiness_check("exploding", lambda: 1 / 0)  # type: ignore[func-returns-value]
    failing = httpx.get(f"{live.url}/readyz", trust_env=False)
    assert failing.status_code == 503
    body = failing.json()
    assert body["failing"] == ["workers", "exploding"]
    assert body["checks"]["workers"] == "failed: no job worker seen for 60 s"
    assert body["checks"]["exploding"] == "failed: ZeroDivisionError"  # the type, never an exception's text


def test_readyz_fails_once_the_job_worker_stops_and_metrics_count_jobs_by_kind_and_state(live: LiveServer) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    live.state.jobs.queue.enqueue(JobRequest("platform.retention", run_at=later))
    metrics = httpx.get(f"{live.url}/metrics", trust_env=False).text
    assert 'circuit_jobs{queue="platform.retention",state="todo"} 1.0' in metrics
    live.state.jobs.close()  # the in-process worker stops
    answer = httpx.get(f"{live.url}/readyz", trust_env=False)
    assert answer.status_code == 503
    assert answer.json()["checks"]["workers"] == "failed: the job worker is stopping"


def test_readyz_fails_when_the_database_is_behind_or_a_check_hangs(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = live.state.platform.database.engine
    table = control_plane(live.state.platform.database.prefix).version_table
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE {table} SET version_num = '0001'")
    monkeypatch.setattr(probes_module, "READINESS_TIMEOUT_S", 0.5)
    live.state.telemetry.add_readiness_check("slow", lambda: time.sleep(3))  # type: ignore[func-returns-value]
    started = time.monotonic()
    answer = httpx.get(f"{live.url}/readyz", trust_env=False)
    assert time.monotonic() - started < 2.5
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["migrations"].startswith("failed: control_plane is at ['0001'], this version needs")
    assert checks["slow"] == "failed: no answer within the deadline"
    assert checks["database"] == "ok"


def serve_app(app: FastAPI) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def test_livez_answers_while_the_thread_pool_is_saturated(tmp_path: Path) -> None:
    state, settings = start(tmp_path)
    app = create_app(settings, state)
    release = threading.Event()
    entered = threading.Semaphore(0)

    @app.get("/blocking")
    def blocking() -> dict[str, str]:  # a sync route: it holds one of the pool's 40 threads
        entered.release()
        release.wait(30)
        return {}

    try:
        for url in serve_app(app):
            with ThreadPoolExecutor(60) as pool:
                blocked = [pool.submit(httpx.get, f"{url}/blocking", timeout=60, trust_env=False) for _ in range(60)]
                for _ in range(40):  # every thread of anyio's default limiter is taken
                    assert entered.acquire(timeout=20)
                time.sleep(0.2)
                assert not entered.acquire(timeout=0.3)  # the other 20 wait for a thread
                for path in ("/livez", "/healthz", "/readyz"):
                    started = time.monotonic()
                    answer = httpx.get(f"{url}{path}", timeout=10, trust_env=False)
                    assert answer.status_code == 200, (path, answer.text)
                    assert time.monotonic() - started < 1.0, path
                release.set()
                assert all(f.result().status_code == 200 for f in blocked)
    finally:
        release.set()
        state.close()


def test_json_logs_carry_request_tenant_environment_and_execution(
    live: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    acme = live.tenant("acme")
    before = structlog.get_config()  # restored after: capsys's stream closes with this test
    configure_logging("info", json_lines=True)
    try:
        with acme.client(live) as admin:
            written = admin.post(
                "/v1/records/Contact", json={"records": [{"LastName": "Logged"}]}, headers={"x-request-id": "req-7"}
            )
        raw, headers = generic_signed(generic_event({"LastName": "Hook"}))
        httpx.post(
            f"{live.url}{webhook_path(acme, live)}", content=raw, headers={**headers, "x-circuit-signature": "t=1,v1=0"}
        )
    finally:
        structlog.configure(**before)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    execution = next(line for line in lines if line["event"] == "execution")
    assert execution["request_id"] == "req-7"
    assert execution["tenant"] == acme.id and execution["environment"] == "production"
    assert execution["execution_id"] == written.json()["execution"]["id"]
    assert execution["level"] == "info" and execution["timestamp"].endswith("Z")
    refused = next(line for line in lines if line["event"] == "webhook refused")
    assert refused["reason"] == "bad_signature" and refused["level"] == "warning"
