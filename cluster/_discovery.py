"""Discovery strategies: how a node finds the other members of its cluster.

Seeds (``start_distribution(seeds=...)``) are fixed addresses retried
periodically. ``DNSPoll`` is for clusters whose members come and go behind one
DNS name (a Kubernetes headless service, a Consul or Docker DNS name): it
resolves the name every few seconds and connects to every address that
appears. Membership then spreads by gossip (full mesh). A strategy is any
object with ``async def run(self, dist)``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio
from beamlet.actors.lowlevel import check_number

if TYPE_CHECKING:
    from ._distribution import Distribution

__all__ = ["DNSPoll", "Resolver", "resolve_addresses"]

logger = logging.getLogger("beamlet.cluster")

#: Resolves a DNS name to IP address strings.
Resolver = Callable[[str], Awaitable[list[str]]]


async def resolve_addresses(query: str) -> list[str]:
    """Resolve ``query`` to its IPv4/IPv6 addresses with the system resolver."""
    infos = await trio.socket.getaddrinfo(query, None, type=trio.socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


class DNSPoll:
    """Connect to every address that a DNS name resolves to, polling every ``interval``.

    Args:
        query: the DNS name to resolve.
        port: the distribution port of the members (they must all listen on it).
        interval: seconds between polls.
        resolver: an async function from name to IP strings (for tests, or a
            custom DNS client); the system resolver by default.
    """

    def __init__(
        self,
        query: str,
        port: int,
        *,
        interval: float = 5.0,
        resolver: Resolver | None = None,
    ) -> None:
        if not isinstance(query, str) or not query:
            raise ValueError(f"DNSPoll needs a DNS name, not {query!r}")
        if not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"DNSPoll needs a port in 1..65535, not {port!r}")
        check_number(interval, "DNSPoll interval", strict=True, unit="seconds")
        self.query = query
        self.port = port
        self.interval = interval
        self.resolver = resolver or resolve_addresses

    def __repr__(self) -> str:
        return f"DNSPoll({self.query!r}, {self.port})"

    def addresses(self, ips: list[str]) -> list[str]:
        """The ``"host:port"`` addresses to dial for ``ips`` (resolved IPs), on
        ``port``; an IPv6 address in brackets (``"[::1]:4370"``)."""
        return [f"[{ip}]:{self.port}" if ":" in ip else f"{ip}:{self.port}" for ip in ips]

    async def run(self, dist: Distribution) -> None:
        """Poll forever (until cancelled)."""
        while True:
            try:
                ips = list(await self.resolver(self.query))
            except Exception as exc:  # a resolver's failure must not stop the node
                logger.warning("DNS discovery: cannot resolve %s: %r", self.query, exc)
                ips = []
            for address in self.addresses(ips):
                dist.connect_soon(address)  # skips this node and the nodes connected
            await trio.sleep(self.interval)
