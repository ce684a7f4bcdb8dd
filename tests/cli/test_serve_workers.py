"""``circuit serve --workers 2``: two server processes on one socket, one data directory.

Writes sent at once all succeed, each fires the trigger once, the metrics a scrape shows are the sum
over both processes, and a SIGTERM to the parent stops every process cleanly.
"""

from __future__ import annotations

import os
import re
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.cli.test_serve import Served

WRITES = 40


def children_of(pid: int) -> list[int]:
    """The live processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def server_processes(parent: int) -> list[int]:
    """The uvicorn worker processes: children running ``multiprocessing``'s spawn entry point."""
    found = []
    for pid in children_of(parent):
        try:
            command = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"multiprocessing" in command and b"resource_tracker" not in command:
            found.append(pid)
    return found


def executions_total(metrics: str) -> float:
    lines = [line for line in metrics.splitlines() if line.startswith("circuit_executions_total{")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if 'status="ok"' in line)


def test_two_processes_serve_one_data_directory_and_stop_together(tmp_path: Path) -> None:
    served = Served(tmp_path / "data", "--workers", "2")
    try:
        assert re.search(r"processes:\s+2 ", "".join(served.banner)), served.banner
        workers = server_processes(served.process.pid)
        assert len(workers) == 2, (workers, children_of(served.process.pid))
        headers = {"authorization": f"Bearer {served.key}"}

        def write(n: int) -> int:
            lead = {"LastName": f"Lead {n}", "Email": f"lead{n}@acme.io", "Company_Size__c": 900}
            with httpx.Client(base_url=served.url, headers=headers, trust_env=False, timeout=60) as client:
                answer = client.post("/v1/records/Contact", json={"records": [lead]})
                assert answer.status_code == 200, answer.text
                assert answer.json()["execution"]["status"] == "ok"
                return answer.status_code

        with ThreadPoolExecutor(8) as pool:
            try:
                assert list(pool.map(write, range(WRITES))) == [200] * WRITES
            except (httpx.HTTPError, AssertionError) as exc:
                raise AssertionError(f"{exc}\n{served.printed()}") from exc
        with httpx.Client(base_url=served.url, headers=headers, trust_env=False, timeout=60) as client:
            soql = "SELECT COUNT() FROM Contact WHERE VLPR_Grade__c != null"
            assert client.get("/v1/query", params={"soql": soql}).json()["total_size"] == WRITES
            listed = client.get("/v1/executions", params={"limit": 200}).json()["executions"]
            assert len([e for e in listed if e["trigger"] == "api:Contact.insert"]) == WRITES
            scrape = client.get("/metrics").text
        assert executions_total(scrape) == WRITES  # summed over both processes
    finally:
        served.process.send_signal(signal.SIGTERM)
        code = served.process.wait(timeout=60)
    assert code == 0
    assert all(not Path(f"/proc/{pid}").exists() or _zombie(pid) for pid in workers)


def _zombie(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_workers_must_be_a_positive_number(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.cli.test_serve import ROOT

    refused = subprocess.run(
        [sys.executable, "-m", "circuit_host.cli", "serve", "--workers", "0", "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={**os.environ},
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "workers" in refused.stderr and "greater than or equal to 1" in refused.stderr
