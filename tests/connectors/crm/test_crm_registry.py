"""The registry is the one list of webhook sources: each is found by name, and no other module names one."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

import circuit_host
from circuit_host.connectors.crm import crm_registry
from circuit_host.connectors.crm.crm_registry import CrmPlugin, registered
from circuit_host.errors import Rejected
from circuit_host.platform import TenantSettings
from circuit_host.webhooks import WebhookRejected

HOST = Path(circuit_host.__file__).parent


class ToySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    toy_token: str | None = None


TOY = CrmPlugin("toy", "Toy CRM", ToySettings, verify=lambda *_: None, normalize=lambda *_: [])


def test_the_shipped_sources_in_the_order_their_urls_are_listed() -> None:
    assert crm_registry.sources() == ("ghl", "salesforce-cdc", "generic")
    assert [p.source for p in crm_registry.plugins()] == list(crm_registry.sources())
    assert crm_registry.plugin_for("ghl").title == "GoHighLevel"


def test_an_unknown_source_is_404_naming_the_known_ones() -> None:
    assert crm_registry.find("hubspot") is None
    with pytest.raises(WebhookRejected) as caught:
        crm_registry.plugin_for("hubspot")
    assert (caught.value.status, caught.value.reason) == (404, "unknown_source")
    assert "known: ghl, salesforce-cdc, generic" in caught.value.message


def test_a_source_is_registered_once_and_its_settings_are_its_own() -> None:
    with registered(TOY):
        assert crm_registry.find("toy") is TOY
        with pytest.raises(ValueError, match="already registered"):
            crm_registry.register(TOY)
        clash = CrmPlugin("toy2", "Clash", type("Clash", (ToySettings,), {}), lambda *_: None, lambda *_: [])
        with pytest.raises(ValueError, match=r"toy2: settings \['toy_token'\] are already toy's"):
            crm_registry.register(clash)
    assert crm_registry.find("toy") is None


def test_a_sources_settings_are_flat_tenant_settings_while_it_is_registered() -> None:
    with registered(TOY):
        settings = TenantSettings.validated({"toy_token": "t0ken", "rate_limit_per_minute": 5})
        assert settings.section(ToySettings).toy_token == "t0ken"
        assert settings.to_storage()["toy_token"] == "t0ken"
        with pytest.raises(Rejected, match=r"settings.toy_token: Input should be a valid string"):
            TenantSettings.validated({"toy_token": 5})
    with pytest.raises(Rejected, match=r"settings.toy_token: unknown setting"):
        TenantSettings.validated({"toy_token": "t0ken"})


# --- no module but its own plugin package names a source -----------------------------------------


def source_names() -> dict[str, Path]:
    """Each registered source's names (its URL name and its package's name) -> its package folder,
    the one whose ``plugin.py`` builds the plugin."""
    names: dict[str, Path] = {}
    for plugin in crm_registry.plugins():
        [module] = [
            m
            for name, m in list(sys.modules.items())
            if name.endswith(".plugin") and any(value is plugin for value in vars(m).values())
        ]
        folder = Path(str(module.__file__)).parent
        names[plugin.source] = folder
        names[folder.name] = folder
    return names


def compared_strings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """String literals that decide a branch: compared (``==``, ``in`` a tuple...), matched, or keying a dict."""

    def strings(node: ast.AST | None) -> Iterator[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            for element in node.elts:
                yield from strings(element)

    for node in ast.walk(tree):
        found: list[str] = []
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                found.extend(strings(operand))
        elif isinstance(node, ast.MatchValue):
            found.extend(strings(node.value))
        elif isinstance(node, ast.Dict):
            for key in node.keys:
                found.extend(strings(key))
        for value in found:
            yield getattr(node, "lineno", 0), value


def test_the_checker_sees_comparisons_matches_and_lookup_tables() -> None:
    code = """
if source == "ghl": pass
if source in ("x", "salesforce-cdc"): pass
match source:
    case "generic": pass
KEYS = {"gohighlevel": 1}
print("ghl")  # naming it is fine; deciding on it is not
"""
    found = sorted(v for _, v in compared_strings(ast.parse(code)))
    assert found == ["generic", "ghl", "gohighlevel", "salesforce-cdc", "x"]


def test_no_source_name_is_compared_outside_its_own_plugin_package() -> None:
    names = source_names()
    offenders = []
    for path in sorted(HOST.rglob("*.py")):
        for line, value in compared_strings(ast.parse(path.read_text(), str(path))):
            home = names.get(value)
            if home is not None and home not in path.parents:
                offenders.append(f"{path.relative_to(HOST)}:{line}: {value!r}")
    assert not offenders, "look the source up in connectors.crm.crm_registry instead:\n" + "\n".join(offenders)


def test_no_module_keeps_its_own_list_of_sources() -> None:
    names = source_names()
    lists = []
    for path in sorted(HOST.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Tuple | ast.List | ast.Set):
                named = {e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in names}
                if len(named) >= 2:
                    lists.append(f"{path.relative_to(HOST)}:{node.lineno}: {sorted(named)}")
    assert not lists, "iterate connectors.crm.crm_registry.sources() instead:\n" + "\n".join(lists)
