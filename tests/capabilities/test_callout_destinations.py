"""Callouts never reach loopback, private, link-local or reserved addresses unless an operator
allowed the network: checked on the resolved address at connect time, whatever the URL's form."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import msgpack
import pytest

from circuit_host.bundles import parse_manifest
from circuit_host.circuitdb import CircuitDB
from circuit_host.connectors.callout_destinations import Lookup, numeric_host, parse_networks, refused
from circuit_host.connectors.http_client import HttpConnector
from circuit_host.errors import Rejected
from circuit_host.execution.callout_policy import HostPattern
from circuit_host.execution.executions import ExecutionOptions, ExecutionRecord, Executor
from circuit_host.execution.limits import LimitsProfile
from circuit_host.platform.settings import TenantSettings
from circuit_host.sandbox.runtime import Runtime
from tests.conftest import LoopbackServer, reply

Load = Callable[[str], Any]


@pytest.fixture
def default_executor(runtime: Runtime, records: CircuitDB) -> Iterator[Executor]:
    """An executor as a host starts it: no private network allowed."""
    http = HttpConnector()
    yield Executor(runtime, records, http)
    http.close()


def callout(executor: Executor, load_guest: Load, url: str, allow: str, **options: Any) -> ExecutionRecord:
    request = {"method": "GET", "url": url, "timeout_ms": 2000}
    opts = ExecutionOptions(allowed_hosts=(HostPattern.parse(allow),), **options)
    return executor.run(load_guest("callout_proxy"), msgpack.packb(request), opts)


def assert_refused(record: ExecutionRecord) -> None:
    assert record.status == "error"  # a catchable CalloutError the guest returned
    assert record.error is not None
    assert "refused: the destination is a private, loopback, link-local or reserved address" in record.error["message"]
    assert "CalloutRefused" in record.debug_log


def test_a_loopback_service_in_the_allowlist_is_refused(
    default_executor: Executor, load_guest: Load, loopback: LoopbackServer
) -> None:
    loopback.routes["/admin"] = reply(200, b"internal")
    record = callout(default_executor, load_guest, f"{loopback.base}/admin", loopback.base)
    assert_refused(record)
    assert loopback.requests == []
    assert record.usage["callouts"].used == 1


@pytest.mark.parametrize(
    "host",
    [
        "localhost",  # a name resolving to 127.0.0.1
        "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
        "2130706433",  # decimal
        "0x7f.1",  # hex, short form
        "017700000001",  # octal
        "127.1",
    ],
)
def test_every_spelling_of_loopback_is_refused(
    default_executor: Executor, load_guest: Load, loopback: LoopbackServer, host: str
) -> None:
    loopback.routes["/admin"] = reply(200, b"internal")
    base = f"http://{host}:{loopback.port}"
    record = callout(default_executor, load_guest, f"{base}/admin", base)
    assert_refused(record)
    assert loopback.requests == []
    if host == "localhost":  # where a name resolved is the host's business, not the guest's
        assert "127.0.0.1" not in record.error["message"]


@pytest.mark.parametrize(
    "host", ["169.254.169.254", "[fd00:ec2::254]", "10.0.0.1", "100.64.0.1", "0.0.0.0", "[::]", "224.0.0.1"]
)
def test_metadata_private_and_reserved_addresses_are_refused(
    default_executor: Executor, load_guest: Load, host: str
) -> None:
    base = f"http://{host}"
    assert_refused(callout(default_executor, load_guest, f"{base}/latest/meta-data/", base))


def test_a_tenant_setting_allows_a_private_network(
    default_executor: Executor, load_guest: Load, loopback: LoopbackServer
) -> None:
    loopback.routes["/ok"] = reply(200, b"fine")
    settings = TenantSettings.validated({"callout_allowed_networks": ["127.0.0.0/8"]})
    record = callout(
        default_executor,
        load_guest,
        f"{loopback.base}/ok",
        loopback.base,
        allowed_networks=settings.callout_allowed_networks,
    )
    assert record.status == "ok", record.error
    assert record.output["body"] == b"fine"
    assert TenantSettings.validated(settings.to_storage()).callout_allowed_networks == settings.callout_allowed_networks

    other = callout(
        default_executor,
        load_guest,
        f"{loopback.base}/ok",
        loopback.base,
        allowed_networks=parse_networks(["10.1.2.0/24"]),
    )
    assert_refused(other)  # allowing one network allows only that one
    assert len(loopback.requests) == 1


def test_the_setting_takes_networks_only() -> None:
    with pytest.raises(Rejected, match=r"settings\.callout_allowed_networks\.0"):
        TenantSettings.validated({"callout_allowed_networks": ["intranet"]})
    assert TenantSettings().callout_allowed_networks == ()  # nothing private by default


def test_a_bundle_cannot_allow_a_network() -> None:
    with pytest.raises(Rejected, match="unknown key"):
        parse_manifest(
            '[circuit]\nname = "x"\nversion = "1.0.0"\n[callouts]\ncallout_allowed_networks = ["127.0.0.0/8"]\n'
        )


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("[::1]", "::1"),
        ("api.example.com", None),
        ("256.1", None),
        ("1.2.3.4.5", None),
    ],
)
def test_numeric_hosts_are_read_as_inet_aton_reads_them(host: str, expected: str | None) -> None:
    found = numeric_host(host)
    assert (str(found) if found is not None else None) == expected


@pytest.mark.parametrize(
    ("address", "is_refused"),
    [
        ("8.8.8.8", False),
        ("2606:4700::1111", False),
        ("::ffff:8.8.8.8", False),
        ("64:ff9b::808:808", False),  # NAT64 to a public address
        ("64:ff9b::7f00:1", True),  # NAT64 to loopback
        ("2002:7f00:1::1", True),  # 6to4 around loopback
        ("::ffff:169.254.169.254", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("fc00::1", True),
        ("fe80::1", True),
        ("255.255.255.255", True),
    ],
)
def test_addresses_are_judged_by_the_ipv4_address_they_carry(address: str, is_refused: bool) -> None:
    assert refused(ipaddress.ip_address(address), ()) is is_refused


@pytest.fixture
def hanging_resolver() -> Iterator[tuple[Lookup, list[str]]]:
    """A resolver that never answers until the test ends (a DNS server that drops queries)."""
    release = threading.Event()
    asked: list[str] = []

    def lookup(host: str, port: int) -> Sequence[tuple[Any, ...]]:
        asked.append(host)
        release.wait(30)
        raise socket.gaierror("never answered")

    yield lookup, asked
    release.set()


@pytest.mark.parametrize(
    ("timeout_ms", "limits", "status", "message"),
    [
        (300, LimitsProfile(), "error", "timed out after 0.300 s"),  # the callout's own timeout
        (10_000, LimitsProfile(timeout_ms=400), "timeout", "deadline reached during a callout"),
    ],
)
def test_a_name_lookup_that_hangs_is_bounded_by_the_callout_timeout_and_the_deadline(
    runtime: Runtime,
    records: CircuitDB,
    load_guest: Load,
    hanging_resolver: tuple[Lookup, list[str]],
    timeout_ms: int,
    limits: LimitsProfile,
    status: str,
    message: str,
) -> None:
    lookup, asked = hanging_resolver
    http = HttpConnector(lookup=lookup)
    try:
        request = {"method": "GET", "url": "https://slow-dns.example/x", "timeout_ms": timeout_ms}
        options = ExecutionOptions(limits=limits, allowed_hosts=(HostPattern.parse("https://slow-dns.example"),))
        started = time.monotonic()
        record = Executor(runtime, records, http).run(load_guest("callout_proxy"), msgpack.packb(request), options)
        elapsed = time.monotonic() - started
    finally:
        http.close()
    assert asked == ["slow-dns.example"]
    assert elapsed < 2.0  # not the resolver's 30 s
    assert record.status == status and record.error is not None
    assert message in record.error["message"]
