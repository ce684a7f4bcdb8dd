"""circuit.toml: a strict model whose every error names the key at fault."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from circuit_host.bundles import parse_manifest, read_manifest
from circuit_host.bundles.manifest import requirement_path
from circuit_host.errors import Rejected
from circuit_host.execution.limits import LimitsProfile

ROOT = Path(__file__).resolve().parents[2]
HEAD = '[circuit]\nname = "scorer"\nversion = "1.2.3"\n'


def test_the_virtual_lpr_manifest_is_valid() -> None:
    manifest = read_manifest(ROOT / "examples" / "virtual_lpr" / "circuit.toml")
    assert (manifest.name, manifest.version) == ("virtual_lpr", "1.0.0")
    assert manifest.triggers[0].object == "Contact"
    assert manifest.triggers[0].operations == ("after_insert",)
    # the seven fields the trigger reads and writes, and the enrichment job's Household_Income__c
    assert len(manifest.schema_changes().fields) == 8


def test_a_full_manifest() -> None:
    manifest = parse_manifest(
        HEAD
        + """description = "scores leads"
[[triggers]]
object = "Contact"
operations = ["before_insert", "after_update"]
order = 5
[limits]
queries = 10
[callouts]
allowed_hosts = ["https://api.census.gov", "https://*.example.com:8443"]
[credentials]
names = ["census"]
[tests]
anything = { goes = [1, 2] }
"""
    )
    assert manifest.circuit.description == "scores leads"
    assert manifest.triggers[0].order == 5
    assert manifest.limits == {"queries": 10}
    assert [p.host for p in manifest.allowed_hosts()] == ["api.census.gov", "*.example.com"]
    assert manifest.credentials.names == ("census",)
    assert manifest.tests == {"anything": {"goes": [1, 2]}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "circuit.toml: [circuit] is required"),
        ('[circuit]\nname = "scorer"\n', "circuit.toml: circuit.version: is required"),
        ('[circuit]\nname = "Scorer"\nversion = "1.0.0"\n', "circuit.toml: circuit.name: must be lower case"),
        ('[circuit]\nname = "scorer"\nversion = "1.0"\n', "circuit.toml: circuit.version: must be a semantic version"),
        ('[circuit]\nname = "scorer"\nversion = 1\n', "circuit.toml: circuit.version: "),
        (HEAD + "owner = 'me'\n", "circuit.toml: circuit.owner: unknown key"),
        (HEAD + "[deploy]\n", "circuit.toml: unknown table [deploy]"),
        (HEAD + "[limits]\nfuell = 1\n", "circuit.toml: limits.fuell: unknown limit"),
        (HEAD + "[limits]\nfuel = '1'\n", "circuit.toml: limits.fuel: must be an integer"),
        (HEAD + "[limits]\nfuel = 0\n", "circuit.toml: limits.fuel: "),
        (
            HEAD + "[[triggers]]\nobject = 'Contact'\noperations = ['after_insert', 'on_save']\n",
            "triggers[0].operations[1]",
        ),
        (HEAD + "[[triggers]]\nobject = 'Contact'\noperations = []\n", "circuit.toml: triggers[0].operations:"),
        (HEAD + "[[triggers]]\noperations = ['after_insert']\n", "circuit.toml: triggers[0].object: is required"),
        (HEAD + "[[triggers]]\nobject = 'Contact'\noperations = ['after_insert', 'after_insert']\n", "must not repeat"),
        (HEAD + "[triggers]\nobject = 'Contact'\n", "circuit.toml: triggers must be an array of tables"),
        (HEAD + "[callouts]\nallowed_hosts = ['https://x.com/path']\n", "circuit.toml: callouts.allowed_hosts[0]:"),
        (HEAD + "[callouts]\nhosts = []\n", "circuit.toml: callouts.hosts: unknown key"),
        (HEAD + "[credentials]\nnames = ['has space']\n", "circuit.toml: credentials.names: credential name"),
        (
            HEAD + "[[schema.fields]]\nobject = 'Contact'\nname = 'X__c'\ntype = 'nope'\n",
            "schema.fields[0] (Contact.X__c)",
        ),
        ("[circuit\n", "circuit.toml: invalid TOML"),
        ("python = 'humanize'\n" + HEAD, "circuit.toml: python must be a table ([python])"),
        (HEAD + "[python]\npackages = []\n", "circuit.toml: python.packages: unknown key"),
        (HEAD + "[python]\nrequirements = 'humanize'\n", "circuit.toml: python.requirements: must be an array"),
        (
            HEAD + "[python]\nrequirements = [1]\n",
            "circuit.toml: python.requirements[0]: Input should be a valid string",
        ),
        (
            HEAD + "[python]\nrequirements = ['a', '']\n",
            "circuit.toml: python.requirements[1]: String should have at least",
        ),
        (
            HEAD + "[python]\nrequirements = ['" + "a" * 301 + "']\n",
            "python.requirements[0]: String should have at most 300",
        ),
        (
            HEAD + "[python]\nrequirements = [" + "'a'," * 101 + "]\n",
            "python.requirements: Tuple should have at most 100",
        ),
        (
            HEAD + "[python]\nrequirements = ['humanize', 'Humanize']\n",
            "python.requirements: 'Humanize' is listed twice",
        ),
        (
            HEAD + "[python]\nrequirements = ['vendor/x', './vendor/x']\n",
            "python.requirements: './vendor/x' is listed twice",
        ),
        (
            HEAD + "[python]\nrequirements = ['../shared/lib']\n",
            "python.requirements[0]: '../shared/lib': must stay inside",
        ),
        (HEAD + "[python]\nrequirements = ['vendor/../../x.whl']\n", "must stay inside the circuit directory"),
        (
            HEAD + "[python]\nrequirements = ['/opt/lib.py']\n",
            "python.requirements[0]: '/opt/lib.py': must be a path relative",
        ),
        (HEAD + "[python]\nrequirements = ['C:/lib.whl']\n", "write paths with '/', relative to the circuit directory"),
        (HEAD + "[python]\nrequirements = ['./']\n", "names the circuit directory itself"),
        (HEAD + "[python]\nrequirements = ['--index-url=https://x.test']\n", "pip options are not allowed"),
        (HEAD + "[python]\nrequirements = [' humanize']\n", "python.requirements[0]: must not have surrounding spaces"),
        (HEAD + '[python]\nrequirements = ["a\\nb"]\n', "or control characters"),
    ],
)
def test_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(Rejected) as caught:
        parse_manifest(text)
    assert message in str(caught.value)


def test_limit_overrides_apply_on_top_of_the_capped_defaults() -> None:
    manifest = parse_manifest(HEAD + "[limits]\nqueries = 20\nfuel = 1000\n")
    ceiling = LimitsProfile(queries=50, dml_rows=10)
    profile = manifest.limits_profile(ceiling)
    assert (profile.queries, profile.fuel) == (20, 1000)
    assert profile.dml_rows == 10  # the default (10,000) is above the ceiling, so the ceiling applies
    assert profile.timeout_ms == LimitsProfile().timeout_ms


def test_an_override_above_the_ceiling_is_rejected_naming_the_limit() -> None:
    manifest = parse_manifest(HEAD + "[limits]\nqueries = 200\n")
    with pytest.raises(Rejected, match=r"limits\.queries: 200 is above the tenant's maximum of 100"):
        manifest.limits_profile(LimitsProfile())
    assert manifest.limits_profile(LimitsProfile(queries=500)).queries == 200


def test_the_manifest_round_trips_by_alias() -> None:
    manifest = parse_manifest(HEAD + "[[schema.fields]]\nobject = 'Contact'\nname = 'X__c'\ntype = 'text'\n")
    dumped = manifest.model_dump(by_alias=True)
    assert dumped["schema"] == {"fields": [{"object": "Contact", "name": "X__c", "type": "text"}]}


def test_the_python_table_lists_specifiers_wheels_and_local_code() -> None:
    manifest = parse_manifest(
        HEAD
        + """[python]
requirements = ["humanize==4.9.0", "attrs[tests] @ https://example.com/attrs.whl", "wheels/foo-1.0-py3-none-any.whl",
    "./mylib", "vendor/helpers.py"]
"""
    )
    entries = manifest.python.requirements
    assert [requirement_path(entry) for entry in entries] == [
        None,
        None,
        PurePosixPath("wheels/foo-1.0-py3-none-any.whl"),
        PurePosixPath("mylib"),
        PurePosixPath("vendor/helpers.py"),
    ]
    assert parse_manifest(HEAD).python.requirements == ()
