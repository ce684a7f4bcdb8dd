"""`circuit serve` shows where the dashboard is, and `circuit logs --tail` follows the server's live
stream (the dashboard's): real processes, real HTTP."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from typing import Any

import httpx

from tests.cli.test_serve import ROOT, Served, served  # noqa: F401  (circuit serve on a fresh data directory)


def write_contact(served: Served, last_name: str) -> str:  # noqa: F811
    headers = {"authorization": f"Bearer {served.key}"}
    with httpx.Client(base_url=served.url, headers=headers, trust_env=False) as client:
        written = client.post("/v1/records/Contact", json={"records": [{"LastName": last_name}]})
    assert written.status_code == 200, written.text
    execution_id: str = written.json()["execution"]["id"]
    return execution_id


def lines_of(process: subprocess.Popen[str]) -> queue.Queue[str]:
    """The process's output lines, read by a thread so a test can wait for one with a deadline."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def wait_for(lines: queue.Queue[str], text: str, seconds: float) -> tuple[str, float]:
    started = time.monotonic()
    seen = []
    while time.monotonic() - started < seconds:
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line:
            return line, time.monotonic() - started
    raise AssertionError(f"no line with {text!r} within {seconds} s:\n{''.join(seen)}")


def test_serve_prints_the_dashboard_url_and_serves_it_and_the_docs(served: Served) -> None:  # noqa: F811
    banner = "".join(served.banner)
    assert f"dashboard:   {served.url}/dashboard/" in banner
    with httpx.Client(base_url=served.url, trust_env=False) as client:
        page = client.get("/dashboard/")
        assert page.status_code == 200 and "Circuit Script dashboard" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        docs = client.get("/docs")
        assert "/dashboard/vendor/swagger-ui/swagger-ui-bundle.js" in docs.text
        assert client.get("/dashboard/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200


def test_logs_tail_prints_new_executions_and_their_log_lines_from_the_stream(served: Served) -> None:  # noqa: F811
    first = write_contact(served, "Before")
    env: dict[str, Any] = {**os.environ, "CIRCUIT_API_KEY": served.key, "CIRCUIT_SERVER": served.url}
    tail = subprocess.Popen(
        [sys.executable, "-m", "circuit_host.cli", "logs", "--tail", "--debug-log"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        lines = lines_of(tail)
        wait_for(lines, first, 30)  # the listing: after it, only the stream prints executions
        second = write_contact(served, "After")
        line, _ = wait_for(lines, second, 3)
        assert "api:Contact.insert" in line and " ok " in line
        wait_for(lines, "|EXECUTION_END|status ok, committed", 2)  # its debug log, streamed after it
    finally:
        tail.terminate()
        tail.wait(timeout=10)
