"""Property-based fuzzing of the parsers that read attacker bytes (issue 11, fuzzing): guest msgpack
at the ABI, the SOQL parser, every webhook source's normaliser and the bundle manifest. Each input must parse or be
refused with the parser's own error, never another exception. ``CIRCUIT_FUZZ_EXAMPLES=N`` runs
longer than the suite's short budget."""

from __future__ import annotations

import contextlib
import json
import os
import tomllib
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circuit_host.abi.codec import decode
from circuit_host.bundles.manifest import manifest_from_document, parse_manifest
from circuit_host.connectors.crm import crm_registry
from circuit_host.errors import GuestFault, QueryError, Rejected
from circuit_host.soql.parser import parse
from circuit_host.webhooks import DEFAULT_LIMITS, WebhookRejected

EXAMPLES = int(os.environ.get("CIRCUIT_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PAYLOADS = Path(__file__).parent / "payloads"
EXAMPLE_MANIFEST = Path(__file__).resolve().parents[2] / "examples" / "virtual_lpr" / "circuit.toml"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30,
)


@FUZZ
@given(st.binary(max_size=512))
def test_guest_msgpack_decodes_or_is_a_guest_fault(data: bytes) -> None:
    with contextlib.suppress(GuestFault):
        decode(data, "fuzz")


@FUZZ
@given(json_values)
def test_any_msgpack_value_the_abi_allows_round_trips(value: Any) -> None:
    packed = msgpack.packb(value)
    with contextlib.suppress(GuestFault):  # too deep, or a key that is not a string
        assert decode(packed, "fuzz") == value


SOQL_WORDS = st.sampled_from(
    [
        "SELECT",
        "Id",
        ",",
        "FROM",
        "Contact",
        "WHERE",
        "=",
        "!=",
        "LIKE",
        "IN",
        "(",
        ")",
        ":ids",
        "'x%'",
        "AND",
        "OR",
        "NOT",
        "ORDER",
        "BY",
        "LIMIT",
        "10",
        "OFFSET",
        "COUNT()",
        "NULL",
        "TRUE",
        "INCLUDES",
        "'a;b'",
        "1.5",
        "DESC",
        "NULLS",
        "LAST",
        "Email",
        "Account.Name",
        "-",
        "2026-01-01",
        "GROUP",
    ]
)


@FUZZ
@given(st.lists(SOQL_WORDS, max_size=25).map(" ".join) | st.text(max_size=200))
def test_soql_parses_or_is_a_query_error(text: str) -> None:
    with contextlib.suppress(QueryError):
        parse(text)


def _fixtures(prefix: str) -> list[Any]:
    return [json.loads(path.read_text()) for path in sorted(PAYLOADS.glob(f"{prefix}*.json"))]


def _mutated(document: Any, path: list[Any], value: Any) -> Any:
    """``document`` with the member or element reached by ``path`` (taken modulo sizes) replaced."""
    if not path or not isinstance(document, dict | list) or not document:
        return value
    if isinstance(document, dict):
        key = sorted(document)[path[0] % len(document)]
        return {**document, key: _mutated(document[key], path[1:], value)}
    index = path[0] % len(document)
    return [*document[:index], _mutated(document[index], path[1:], value), *document[index + 1 :]]


@pytest.mark.parametrize("source", crm_registry.sources())
@FUZZ
@given(data=st.data())
def test_every_webhook_normaliser_accepts_or_refuses_cleanly(source: str, data: st.DataObject) -> None:
    plugin = crm_registry.find(source)
    assert plugin is not None
    prefix = {"salesforce-cdc": "sfdc_"}.get(source, f"{source}_")
    fixtures = _fixtures(prefix) or [{}]
    document = data.draw(st.sampled_from(fixtures))
    path = data.draw(st.lists(st.integers(min_value=0, max_value=50), max_size=4))
    body = _mutated(document, path, data.draw(json_values))
    with contextlib.suppress(WebhookRejected):
        plugin.normalize(body, plugin.configuration(), DEFAULT_LIMITS)


@FUZZ
@given(data=st.data())
def test_a_mutated_manifest_parses_or_is_rejected(data: st.DataObject) -> None:
    """The bundle's ``circuit.toml`` comes from the uploader: a mutated document is a manifest or a
    ``Rejected`` naming the problem, never another exception."""
    document = tomllib.loads(EXAMPLE_MANIFEST.read_text())
    path = data.draw(st.lists(st.integers(min_value=0, max_value=50), max_size=4))
    mutated = _mutated(document, path, data.draw(json_values))
    if not isinstance(mutated, dict):
        mutated = {"circuit": mutated}
    with contextlib.suppress(Rejected):
        manifest_from_document(mutated)


@FUZZ
@given(st.text(max_size=300))
def test_manifest_text_parses_or_is_rejected(text: str) -> None:
    with contextlib.suppress(Rejected):
        parse_manifest(text)
