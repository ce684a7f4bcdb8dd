"""`circuit jobs` and `circuit worker`, run as an operator runs them: the real command in a subprocess,
against a real server on loopback (``live``) or on a data directory of the test's own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from circuit_host.jobs import EmbeddedJobQueue, JobFilter, JobRequest, JobState, RetryPolicy
from tests.cli.test_serve import ROOT, circuit
from tests.server.conftest import LiveServer, live  # noqa: F401 (the fixture)


def test_jobs_list_show_cancel_and_retry(live: LiveServer) -> None:  # noqa: F811
    tenant = live.tenant("acme")
    queue = live.state.jobs.queue
    assert isinstance(queue, EmbeddedJobQueue)
    later = datetime.now(UTC) + timedelta(hours=1)
    waiting = queue.enqueue(
        JobRequest("test.idle", {"n": 1}, tenant_id=tenant.id, circuit="scorer", env="dev", run_at=later)
    )
    doomed = queue.enqueue(JobRequest("test.doomed", tenant_id=tenant.id, retry=RetryPolicy(max_attempts=1)))
    assert waiting is not None and doomed is not None
    [run] = queue.claim(["test.doomed"], 1)
    queue.fail(run, RuntimeError("CRM unreachable"))

    def run_cli(*args: str) -> tuple[int, str, str]:
        done = circuit("jobs", *args, key=tenant.admin_key, server=live.url)
        return done.returncode, done.stdout, done.stderr

    code, out, err = run_cli("list")
    assert code == 0, err
    assert f"{doomed.id:>8} dead" in out and "RuntimeError: CRM unreachable" in out
    assert f"{waiting.id:>8} todo      test.idle" in out and "scorer@dev" in out
    code, out, _ = run_cli("list", "--state", "dead")
    assert str(doomed.id) in out and "test.idle" not in out
    code, _, err = run_cli("list", "--state", "lost")
    assert code == 2 and "state" in err  # the server's refusal, as the CLI prints it
    code, out, _ = run_cli("show", str(waiting.id))
    assert code == 0 and json.loads(out)["payload"] == {"n": 1}
    code, out, _ = run_cli("cancel", str(waiting.id))
    assert (code, out.strip()) == (0, f"job {waiting.id} cancelled")
    code, _, err = run_cli("cancel", str(waiting.id))
    assert code == 2 and "already cancelled" in err
    code, out, err = run_cli("retry", str(doomed.id))
    assert code == 0 and f"job {doomed.id} is todo again" in out, err
    code, _, err = run_cli("show", "999999")
    assert code == 2 and "no job 999999" in err


def test_circuit_worker_runs_the_servers_jobs_and_stops_gracefully(tmp_path: Path) -> None:
    data = tmp_path / "data"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CIRCUIT_")}
    refused = subprocess.run(
        [sys.executable, "-m", "circuit_host.cli", "worker", "--data-dir", str(data), "--concurrency", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert refused.returncode == 2 and "--concurrency 1 or more" in refused.stderr
    worker = subprocess.Popen(
        [sys.executable, "-m", "circuit_host.cli", "worker", "--data-dir", str(data), "--concurrency", "2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert worker.stdout is not None
        banner = worker.stdout.readline()
        assert banner.startswith("circuit worker: embedded queue, 2 at a time, kinds "), banner
        assert {"platform.retention", "webhook.apply", "deploy.gate", "circuit.job"} <= set(
            banner.split("kinds ", 1)[1].strip().split(", ")
        ), banner  # the server's job kinds, so a worker elsewhere runs what the server enqueues
        queue = EmbeddedJobQueue(data / "platform.sqlite3")
        job = queue.enqueue(JobRequest("platform.retention"))
        assert job is not None
        deadline = time.monotonic() + 20
        while (found := queue.get(job.id)) is None or found.state != JobState.SUCCEEDED:
            assert time.monotonic() < deadline, "the worker did not run the job"
            time.sleep(0.1)
        assert [j.state for j in queue.list_jobs(JobFilter(kind="platform.retention"))] == [JobState.SUCCEEDED]
        [relay] = queue.list_jobs(JobFilter(kind="circuit.job-relay"))  # the job outbox's pass at the start
        assert relay.state in (JobState.TODO, JobState.DOING, JobState.SUCCEEDED)
        queue.close()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
