"""``[[schedules]]`` in circuit.toml: cron, time zone, circuit, payload, missed ticks; clear errors."""

from __future__ import annotations

import pytest

from circuit_host.bundles.manifest import parse_manifest
from circuit_host.errors import Rejected

HEAD = '[circuit]\nname = "nightly"\nversion = "1.0.0"\n'


def test_a_schedule_with_every_key() -> None:
    manifest = parse_manifest(
        HEAD
        + """[[schedules]]
name = "rollup"
cron = "30 2 * * 1-5"
timezone = "Europe/Paris"
circuit = "rollups"
payload = { objects = ["Contact", "Lead"], deep = { n = 1 } }
missed = "skip"
"""
    )
    (schedule,) = manifest.schedules
    assert (schedule.name, schedule.cron, schedule.timezone, schedule.circuit, schedule.missed) == (
        "rollup",
        "30 2 * * 1-5",
        "Europe/Paris",
        "rollups",
        "skip",
    )
    assert schedule.payload == {"objects": ["Contact", "Lead"], "deep": {"n": 1}}


def test_defaults_utc_this_circuit_no_payload_missed_once() -> None:
    (schedule,) = parse_manifest(HEAD + '[[schedules]]\ncron = "*/5 * * * *"\n').schedules
    assert (schedule.timezone, schedule.circuit, schedule.payload, schedule.missed) == ("UTC", None, None, "once")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('cron = "61 * * * *"', "schedules[0].cron: '61 * * * *' is not a cron expression"),
        ('cron = "every day"', "is not a cron expression"),
        ('cron = "* * * * *"\ntimezone = "Mars/Olympus"', "schedules[0].timezone: unknown time zone 'Mars/Olympus'"),
        ('cron = "* * * * *"\nmissed = "all"', "schedules[0].missed"),
        ('cron = "* * * * *"\ncircuit = "Bad Name"', "schedules[0].circuit"),
        ('cron = "* * * * *"\nevery = 5', "schedules[0].every: unknown key"),
        ("timezone = 'UTC'", "schedules[0].cron: is required"),
    ],
)
def test_a_bad_schedule_is_rejected_naming_the_key(body: str, message: str) -> None:
    with pytest.raises(Rejected, match=r"^circuit\.toml: ") as caught:
        parse_manifest(HEAD + "[[schedules]]\n" + body + "\n")
    assert message in str(caught.value)


def test_schedules_must_be_an_array_of_tables_with_distinct_names() -> None:
    with pytest.raises(Rejected, match=r"schedules must be an array of tables \(\[\[schedules\]\]\)"):
        parse_manifest(HEAD + '[schedules]\ncron = "* * * * *"\n')
    twice = '[[schedules]]\nname = "a"\ncron = "* * * * *"\n'
    with pytest.raises(Rejected, match="two schedules have the same name"):
        parse_manifest(HEAD + twice + twice)
