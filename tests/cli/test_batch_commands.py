"""`circuit batch`, as an operator runs it: the real command in a subprocess against a live server,
and the progress bar it draws on a terminal."""

from __future__ import annotations

import io
from pathlib import Path

from circuit_host.cli.batch_commands import follow
from circuit_host.client import Client
from tests.cli.test_serve import circuit
from tests.server.conftest import LiveServer, live  # noqa: F401 (the fixture)
from tests.server.test_batch_circuits import batch_bundle, seed  # noqa: F401 (the fixture)
from tests.server.test_end_to_end import deploy


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_batch_start_waits_with_a_line_per_change_and_status_and_list_show_it(
    live: LiveServer,  # noqa: F811
    batch_bundle: Path,  # noqa: F811
) -> None:
    tenant = live.tenant("acme")
    with tenant.client(live) as client:
        deploy(client, batch_bundle, env="dev")
        seed(client, 300)

    def run_cli(*args: str) -> tuple[int, str, str]:
        done = circuit("batch", *args, key=tenant.admin_key, server=live.url)
        return done.returncode, done.stdout, done.stderr

    code, out, err = run_cli("start", "batch_items", "--env", "dev", "--scope", "100", "--wait", "--poll", "0.1")
    assert code == 0, err
    first, *lines = out.splitlines()
    batch_id = first.split()[1]
    assert first == f"batch {batch_id} started: circuit batch status {batch_id} --wait"
    assert lines[-1] == f"batch {batch_id} finished: 3 chunks ok, 0 failed, 300/300 records (300 processed)"
    code, out, _ = run_cli("status", batch_id)
    assert (code, out.strip()) == (0, lines[-1])
    code, out, _ = run_cli("list")
    assert out.strip() == f"batch_items@dev {lines[-1]}"
    code, _, err = run_cli("start", "batch_items", "--env", "dev", "--scope", "5000")
    assert code == 2 and "scope" in err  # the server's refusal, as the CLI prints it
    code, _, err = run_cli("status", "no-such-batch")
    assert code == 2 and "no batch no-such-batch" in err

    terminal = Terminal()
    api = Client(live.url, tenant.admin_key)
    try:
        assert follow(api, batch_id, 0.01, terminal) == 0
    finally:
        api.close()
    assert terminal.getvalue() == f"\r[{'#' * 30}] {lines[-1]}\x1b[K\n"
