"""The metrics as documented and as dashboarded are the metrics the host exports, in every process mode."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from circuit_host.observability import CircuitMetrics, JobCount, ObservabilitySettings, Telemetry

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "host" / "circuit_host" / "observability" / "README.md"
DASHBOARD = ROOT / "deploy" / "grafana" / "circuit-script.json"
SERIES_SUFFIXES = ("_bucket", "_count", "_sum")


def reference() -> dict[str, tuple[str, tuple[str, ...], str]]:
    return {m.name: (m.type, m.labels, m.help) for m in CircuitMetrics(CollectorRegistry()).reference}


def test_the_readme_table_is_the_metrics_reference() -> None:
    rows = re.findall(r"^\| `(circuit_\w+)` \| (\w+) \| (.*?) \| (.*) \|$", README.read_text(), re.MULTILINE)
    documented = {name: (kind, tuple(re.findall(r"`(\w+)`", labels)), meaning) for name, kind, labels, meaning in rows}
    assert documented == reference()


def test_every_dashboard_query_names_an_exported_metric_and_every_metric_is_on_it() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] == "Circuit Script" and dashboard["panels"]
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    used = set()
    for name in re.findall(r"\bcircuit_\w+", " ".join(exprs)):
        for suffix in SERIES_SUFFIXES:
            if name.endswith(suffix) and name.removesuffix(suffix) in reference():
                name = name.removesuffix(suffix)
        used.add(name)
    assert used <= set(reference()), f"not exported: {sorted(used - set(reference()))}"
    assert used == set(reference()), f"not on the dashboard: {sorted(set(reference()) - used)}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_job_counts_are_asked_at_each_scrape() -> None:
    telemetry = Telemetry(ObservabilitySettings())
    depth = {"todo": 3}
    telemetry.count_jobs(lambda: [JobCount("default", state, n) for state, n in depth.items()])
    assert 'circuit_jobs{queue="default",state="todo"} 3.0' in telemetry.exposition().decode()
    depth["todo"] = 0
    depth["failed"] = 1
    text = telemetry.exposition().decode()
    assert 'circuit_jobs{queue="default",state="todo"} 0.0' in text
    assert 'circuit_jobs{queue="default",state="failed"} 1.0' in text


WORKER = """
import sys
from pathlib import Path
from circuit_host.observability import ObservabilitySettings, Telemetry
telemetry = Telemetry(ObservabilitySettings(metrics_multiprocess_dir=Path(sys.argv[1])))
if sys.argv[2] == "count":
    telemetry.count_webhook("generic", "accepted")
    telemetry.metrics.execution_duration.labels("acme", "production", "-").observe(0.2)
else:
    sys.stdout.write(telemetry.exposition().decode())
"""


def test_multi_process_mode_merges_every_workers_counts(tmp_path: Path) -> None:
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}  # as a process manager sets it
    for _ in range(2):  # two workers, each counting once
        subprocess.run([sys.executable, "-c", WORKER, str(tmp_path), "count"], env=environment, check=True)
    scraped = subprocess.run(
        [sys.executable, "-c", WORKER, str(tmp_path), "scrape"], env=environment, check=True, capture_output=True
    ).stdout.decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scraped)
        for s in family.samples
    }
    accepted = (("outcome", "accepted"), ("reason", ""), ("source", "generic"))
    assert samples[("circuit_webhooks_total", accepted)] == 2
    execution = (("circuit", "-"), ("environment", "production"), ("tenant", "acme"))
    assert samples[("circuit_execution_duration_seconds_count", execution)] == 2


def test_label_values_outside_their_closed_sets_are_refused_not_exported() -> None:
    telemetry = Telemetry(ObservabilitySettings())
    with pytest.raises(ValueError, match="webhook outcome"):
        telemetry.count_webhook("generic", "maybe")
    with pytest.raises(ValueError, match="deploy action"):
        telemetry.count_deploy("redeploy", "acme", "dev")
    assert "maybe" not in telemetry.exposition().decode()
