"""The dashboard in headless Chromium against a real server: sign-in, the overview's charts, the
execution timeline, the live tail and a rollback, each checked against the API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.dashboard.conftest import HOT_LEAD, Dashboard, screenshot, sign_in

HOSTILE = '<img src=x onerror="window.__injected=1">'


@pytest.fixture(scope="module")
def executions(dashboard: Dashboard) -> dict[str, list[dict[str, Any]]]:
    """Three ok, one error and one limit_exceeded execution in dev."""
    ran: dict[str, list[dict[str, Any]]] = {"ok": [], "error": [], "limit_exceeded": []}
    for n in range(3):
        ran["ok"].append(dashboard.write({"LastName": f"Cold {n}", "Title": "Intern"}))
    ran["error"].append(dashboard.write({"LastName": "Broken", HOSTILE: 1}))  # its name is quoted in the error
    ran["limit_exceeded"].append(dashboard.write(HOT_LEAD))
    for status, entries in ran.items():
        assert [e["status"] for e in entries] == [status] * len(entries), entries
    return ran


def test_a_bad_key_is_refused_and_a_good_one_signs_in(page: Any, dashboard: Dashboard) -> None:
    page.goto(f"{dashboard.url}/dashboard/")
    page.fill("#api-key", "cs_not_a_key")
    page.click("#sign-in-form button[type=submit]")
    expect(page.locator("#sign-in-error")).to_contain_text("unknown or revoked")
    assert page.evaluate("sessionStorage.length") == 0
    page.fill("#api-key", dashboard.read_key)
    page.click("#sign-in-form button[type=submit]")
    expect(page.locator("#who-tenant")).to_have_text(dashboard.tenant_id)
    expect(page.locator("#who-scopes")).to_have_text("read")


def test_the_overview_charts_show_the_executions(
    page: Any, dashboard: Dashboard, executions: dict[str, list[dict[str, Any]]], screenshots: Path
) -> None:
    sign_in(page, dashboard, where="overview")
    page.wait_for_selector("#rate-chart")
    with dashboard.api() as client:
        stats = client.get("/v1/stats", params={"window": "1h"}).json()
    (dev,) = [c for c in stats["circuits"] if c["env"] == "dev"]
    assert dev["by_status"] == {"ok": 3, "error": 1, "limit_exceeded": 1}
    bars = page.locator("#rate-chart g.bucket").evaluate_all(
        "gs => gs.map(g => [Number(g.dataset.ok), Number(g.dataset.failed)])"
    )
    assert len(bars) in (60, 61)  # one a minute over the hour
    assert sum(ok for ok, _ in bars) == 3 and sum(failed for _, failed in bars) == 2
    assert page.locator("#figure-total .value").inner_text() == "5"
    assert page.locator("#figure-failed .value").inner_text() == "2"
    assert page.locator("#figure-error-rate .value").inner_text() == "40%"
    latency = page.locator('#latency-chart g.latency[data-env="dev"]')
    assert float(latency.get_attribute("data-p99")) == dev["p99_ms"] > 0
    headroom = page.locator('#headroom svg[data-env="dev"] g.resource[data-resource="dml_statements"]')
    assert float(headroom.get_attribute("data-fraction")) == 1.0  # every Virtual LPR run used its one statement
    assert screenshot(page, screenshots, "overview.png").stat().st_size > 10_000
    page.click('button[data-window="24h"]')
    page.locator("#rate-chart g.bucket").nth(90).wait_for(state="attached")
    day = page.locator("#rate-chart g.bucket").evaluate_all("gs => gs.map(g => Number(g.dataset.ok))")
    assert len(day) in (96, 97) and sum(day) == 3  # a quarter-hour each


def test_the_execution_page_draws_one_bar_per_host_call(
    page: Any, dashboard: Dashboard, executions: dict[str, list[dict[str, Any]]], screenshots: Path
) -> None:
    execution_id = executions["ok"][0]["id"]
    with dashboard.api() as client:
        stored = client.get(f"/v1/executions/{execution_id}").json()
    sign_in(page, dashboard, where=f"executions/{execution_id}")
    page.wait_for_selector("#timeline g.step")
    bars = page.locator("#timeline g.step").evaluate_all(
        "gs => gs.map(g => [g.dataset.kind, g.dataset.name, Number(g.dataset.depth),"
        " g.querySelector('text').textContent])"
    )
    assert [(kind, name, depth) for kind, name, depth, _ in bars] == [
        ("dml", "INSERT Contact", 0),
        ("trigger", "trigger virtual_lpr@1.1.0 on Contact.after_insert", 1),
        ("query", "SELECT Value__c FROM Circuit_Setting__c WHERE Name = 'census_url' LIMIT 1", 2),
        ("dml", "UPDATE Contact", 2),
    ]
    labels = [label for *_, label in bars]
    expected = [
        "DML INSERT Contact",
        "trigger virtual_lpr@1.1.0 on Contact.after_insert",
        "QUERY SELECT Value__c FROM Circuit_Setting__c WHERE Name = 'census_url' LIMIT 1",
        "DML UPDATE Contact",
    ]
    assert labels[:2] == expected[:2] and labels[3] == expected[3]
    assert labels[2].endswith("…") and expected[2].startswith(labels[2][:-1])  # long SOQL: cut, whole in the tooltip
    tooltip = page.locator("#timeline g.step title").nth(2).text_content()
    assert tooltip.startswith(f"QUERY {expected[2][6:]}: ")
    assert len(bars) == len(stored["timeline"])
    assert "USER_DEBUG" in page.locator("#debug-log").inner_text()
    assert screenshot(page, screenshots, "timeline.png").stat().st_size > 10_000


def test_text_from_a_record_is_shown_as_text_never_run(
    page: Any, dashboard: Dashboard, executions: dict[str, list[dict[str, Any]]]
) -> None:
    execution_id = executions["error"][0]["id"]
    sign_in(page, dashboard, where=f"executions/{execution_id}")
    expect(page.locator("#execution-error")).to_contain_text("invalid field name")
    assert HOSTILE in page.locator("#execution-error").inner_text()
    page.goto(f"{dashboard.url}/dashboard/#/executions?status=error")
    page.wait_for_selector("tr.execution-row")
    assert page.evaluate("window.__injected") is None
    assert page.locator("img").count() == 0


def test_the_executions_list_filters_by_status(
    page: Any, dashboard: Dashboard, executions: dict[str, list[dict[str, Any]]]
) -> None:
    sign_in(page, dashboard, where="executions")
    page.wait_for_selector("tr.execution-row")
    page.select_option("#filter-status", "limit_exceeded")
    page.click("#execution-filters button[type=submit]")
    expect(page.locator("tr.execution-row")).to_have_count(1)  # the page's script may not eval: CSP
    rows = page.locator("tr.execution-row").evaluate_all("rs => rs.map(r => r.dataset.id)")
    assert rows == [executions["limit_exceeded"][0]["id"]]


def test_the_live_tail_shows_a_new_execution_within_two_seconds(page: Any, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, where="live")
    page.wait_for_selector('#live-state[data-state="open"]')
    started = time.monotonic()
    execution = dashboard.write({"LastName": "Live"})
    entry = page.locator(f'.live-entry[data-id="{execution["id"]}"]')
    entry.wait_for(timeout=2000)
    assert time.monotonic() - started < 2 + 0.5  # the write's own time included
    expect(entry.locator("pre")).to_contain_text("EXECUTION_END")
    assert "USER_DEBUG" in entry.inner_text()


def test_a_read_key_sees_no_rollback_and_an_admin_rolls_back(page: Any, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, key=dashboard.read_key, where="deploys")
    page.wait_for_selector('section.environment[data-env="dev"] tr.active-circuit')
    assert page.locator("button.rollback").count() == 0
    page.click("#sign-out")
    page.fill("#api-key", dashboard.admin_key)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector('section.environment[data-env="dev"] button.rollback')
    assert page.locator('section.environment[data-env="dev"] td.active-version').inner_text() == "1.1.0"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click('section.environment[data-env="dev"] button.rollback')
    page.wait_for_selector("#deploy-message .notice")
    assert page.locator("#deploy-message").inner_text() == "dev now runs virtual_lpr 1.0.0."
    with dashboard.api() as client:
        active = client.get("/v1/environments/dev/circuits").json()
    assert [(c["name"], c["version"]) for c in active] == [("virtual_lpr", "1.0.0")]
    page.wait_for_selector('section.environment[data-env="dev"] td.active-version:text("1.0.0")')
    assert page.locator("tr.audit-row[data-action=rollback]").count() == 1


def test_the_jobs_page_shows_the_queues(page: Any, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, where="jobs")
    for queue, state in (("jobs", "todo"), ("jobs", "dead"), ("outbox", "pending"), ("outbox", "dead")):
        expect(page.locator(f'.figure[data-queue="{queue}"][data-state="{state}"] .value')).to_have_text("0")


def test_the_api_docs_load_without_any_other_origin(page: Any, dashboard: Dashboard) -> None:
    elsewhere: list[str] = []

    def only_the_server(route: Any) -> None:
        if route.request.url.startswith(dashboard.url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    page.goto(f"{dashboard.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Circuit Script host")
    expect(page.locator(".opblock-summary-path", has_text="/v1/executions/stream")).to_have_count(1)
    assert elsewhere == []
