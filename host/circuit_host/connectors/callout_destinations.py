"""Where a callout may connect: public addresses, plus networks an operator allows.

A circuit's allowlist names hosts, and a name can resolve anywhere (DNS rebinding, a name
pointing at 127.0.0.1, ``http://2130706433/``). So the check runs on the resolved address at
connect time: the network backend below resolves the name itself, refuses loopback,
link-local (cloud metadata), private, shared (CGNAT), unspecified, multicast and reserved
addresses, and this host's own addresses, unless the address lies in a network the operator
allowed, then connects to the address it checked (TLS still verifies the name).

The name lookup itself is bounded by the connection's timeout (which the ``http`` capability
bounds by the execution's deadline): ``getaddrinfo`` has no timeout of its own, so it runs on a
daemon thread, at most ``MAX_PENDING_LOOKUPS`` at once, and a lookup still running at the timeout
fails the callout as a timeout. ``Lookup`` is the seam: tests plug in a resolver that hangs.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any

import httpcore
import structlog

from ..errors import CalloutError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
Lookup = Callable[[str, int], Sequence[tuple[Any, ...]]]  # (host, port) -> getaddrinfo's answer
MAX_PENDING_LOOKUPS = 32  # lookups hung on a slow resolver hold at most this many threads
DEFAULT_LOOKUP_TIMEOUT_S = 10.0  # when the caller gives no connect timeout
_lookup_slots = threading.BoundedSemaphore(MAX_PENDING_LOOKUPS)
log = structlog.get_logger("circuit.callouts")


class CalloutRefused(CalloutError):
    """The destination resolved to an address no circuit may reach (private, loopback, metadata...)."""


def parse_networks(texts: Iterable[str | Network]) -> tuple[Network, ...]:
    """``["10.1.2.0/24", "127.0.0.0/8"]`` as networks; a bare address is a one-address network."""
    return tuple(ipaddress.ip_network(text) for text in texts)


def numeric_host(host: str) -> Address | None:
    """The address a numeric host stands for, in every form ``inet_aton`` accepts (``2130706433``,
    ``0x7f.1``, ``017700000001``, ``127.1``) and IPv6 literals; None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        pass
    parts = host.rstrip(".").split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        try:
            if part[:2].lower() == "0x":
                values.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part.startswith("0"):
                values.append(int(part, 8))
            else:
                values.append(int(part, 10) if part.isdigit() else -1)
        except ValueError:
            return None
    if any(v < 0 for v in values):
        return None
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = last
    for i, value in enumerate(head):
        number |= value << (8 * (3 - i))
    return ipaddress.IPv4Address(number)


def _embedded(address: Address) -> Address:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64, Teredo client), else itself."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def refused(address: Address, allowed: tuple[Network, ...]) -> bool:
    """Whether a callout may not connect to ``address`` (checked on the address it carries, too)."""
    for candidate in {address, _embedded(address)}:
        if any(candidate.version == net.version and candidate in net for net in allowed):
            return False
    candidate = _embedded(address)  # a NAT64 or mapped address is judged by the IPv4 one it reaches
    return bool(
        not candidate.is_global
        or candidate.is_loopback
        or candidate.is_link_local
        or candidate.is_multicast
        or candidate.is_reserved
        or candidate.is_unspecified
        or (isinstance(candidate, ipaddress.IPv6Address) and candidate.is_site_local)
        or _is_this_host(candidate)
    )


def _is_this_host(address: Address) -> bool:
    """An address of one of this machine's interfaces (the host server itself) can be bound to."""
    if not _binding_tells_local():
        return False
    return _can_bind(str(address), socket.AF_INET if address.version == 4 else socket.AF_INET6)


@cache
def _binding_tells_local() -> bool:
    """False where any address can be bound (``ip_nonlocal_bind``), which makes the test meaningless."""
    return not _can_bind("192.0.2.1", socket.AF_INET)  # TEST-NET-1: never assigned to a host


def _can_bind(address: str, family: socket.AddressFamily) -> bool:
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((address, 0))
    except OSError:
        return False
    return True


def system_lookup(host: str, port: int) -> Sequence[tuple[Any, ...]]:
    """The operating system's resolver (``getaddrinfo``): it may block for as long as DNS does."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _lookup_within(lookup: Lookup, host: str, port: int, timeout: float) -> Sequence[tuple[Any, ...]]:
    """``lookup(host, port)`` on a daemon thread, given up (``ConnectTimeout``) after ``timeout`` s."""
    if not _lookup_slots.acquire(timeout=timeout):
        raise httpcore.ConnectTimeout(f"name lookup of {host} not started within {timeout:.3f} s: resolver busy")
    answer: list[Sequence[tuple[Any, ...]]] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            answer.append(lookup(host, port))
        except BaseException as exc:  # handed to the caller below
            failure.append(exc)
        finally:
            _lookup_slots.release()
            done.set()

    threading.Thread(target=run, name="circuit-dns", daemon=True).start()
    if not done.wait(timeout):
        raise httpcore.ConnectTimeout(f"name lookup of {host} took over {timeout:.3f} s")
    if failure:
        raise failure[0]
    return answer[0]


def resolve(
    host: str, port: int, timeout: float | None = None, lookup: Lookup = system_lookup
) -> list[tuple[socket.AddressFamily, Address]]:
    """Every address ``host`` stands for, looked up within ``timeout`` s; numeric forms are read
    here, never handed to DNS."""
    numeric = numeric_host(host)
    if numeric is not None:
        return [(socket.AF_INET if numeric.version == 4 else socket.AF_INET6, numeric)]
    try:
        infos = _lookup_within(lookup, host, port, DEFAULT_LOOKUP_TIMEOUT_S if timeout is None else timeout)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(str(exc)) from None
    found: list[tuple[socket.AddressFamily, Address]] = []
    for family, _, _, _, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if (family, address) not in found:
            found.append((family, address))
    return found


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's network backend, connecting only to addresses ``refused`` lets through."""

    def __init__(self, allowed: tuple[Network, ...], lookup: Lookup = system_lookup) -> None:
        self.allowed = allowed
        self.lookup = lookup

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve(host, port, timeout, self.lookup)
        bad = [str(address) for _, address in addresses if refused(address, self.allowed)]
        if bad or not addresses:
            log.warning("callout refused", addresses=bad)  # no host: it may be a credential's
            raise CalloutRefused("refused: the destination is a private, loopback, link-local or reserved address")
        last: Exception | None = None
        for _, address in addresses:  # every one passed: connect to what was checked, not a new lookup
            try:
                return super().connect_tcp(str(address), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        assert last is not None
        raise last
