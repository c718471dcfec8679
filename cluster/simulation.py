"""A deterministic cluster in one ``trio.run``: several nodes over an in-memory network.

Example::

    async def test_failover(autojump_clock):
        async with simulated_cluster(["a", "b", "c"]) as sim:
            pid = await sim.run("b", start_worker)
            sim.crash("b")
            await sim.wait_until(lambda: "b@b" not in sim.nodes("a"))
            ...

Node ``"a"`` is named ``"a@a"``: its host is its own name, so that partitions
are set between hosts. Under ``trio.testing.MockClock(autojump_threshold=0)``
(pytest-trio's ``autojump_clock`` fixture) every tick, timeout and delay runs
in virtual time: the whole cluster is deterministic and fast.

- ``partition({"a"}, {"b", "c"})``: bytes between the groups are lost and new
  connections refused; the nodes notice through their ticks, after
  ``ticktime``.
- ``heal()``: the network is whole again; nodes reconnect through their seeds
  (every other node is a seed, retried every ``seed_interval``).
- ``crash("b")``: node b stops at once, as after SIGKILL: its peers see the
  connections close.
- ``restart("b")``: b starts again, with a new creation, on the same address.
- ``add("d", seeds=["a"])``: a new node joins the running cluster.
- ``delay(seconds, "a", "b")``: bytes between a and b (or everywhere) arrive late.

Every node listens on port ``SIMULATION_PORT`` of its own host (``"a:4370"``),
so that a discovery strategy that knows one port (``DNSPoll``) works as on a
real network. By default every node has all the others as seeds; ``seeds``
narrows that, to test how a node that knows one member finds the rest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio
from beamlet.actors import Node, open_node as open_local_node

from ._api import start_distribution
from ._distribution import Distribution
from ._transport import MemoryNetwork

__all__ = ["SimulatedCluster", "simulated_cluster"]

T = TypeVar("T")

#: The cookie every simulated node uses unless told otherwise.
SIMULATION_COOKIE = "beamlet-simulation-cookie"

#: The port every simulated node listens on, each on its own host.
SIMULATION_PORT = 4370


class _SimNode:
    def __init__(
        self, short: str, seeds: list[str] | None = None, options: Mapping[str, Any] | None = None
    ) -> None:
        if not isinstance(short, str) or not short or "@" in short or ":" in short:
            raise ValueError(f"a simulated node has a short name like 'a', not {short!r}")
        self.short = short
        self.name = f"{short}@{short}"
        self.seeds = seeds  # short names; None: every other node
        self.options = dict(options or {})  # this node's own start_distribution options
        self.node: Node | None = None
        self.scope: trio.CancelScope | None = None
        self.address: str | None = None
        self.stopped = trio.Event()


class SimulatedCluster:
    """A running simulated cluster; ``simulated_cluster`` yields one."""

    def __init__(
        self,
        names: Iterable[str],
        options: dict[str, Any],
        seeds: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.network = MemoryNetwork()
        self._options = options
        seeds = seeds or {}
        self._nodes = {
            short: _SimNode(short, list(seeds[short]) if short in seeds else None)
            for short in names
        }
        if len(self._nodes) == 0:
            raise ValueError("a simulated cluster needs at least one node")
        self._nursery: trio.Nursery | None = None

    # -- access ---------------------------------------------------------------------

    def name(self, short: str) -> str:
        """The full node name of ``short`` (``"a"`` -> ``"a@a"``)."""
        return self._sim(short).name

    def node(self, short: str) -> Node:
        """The running ``Node`` called ``short``."""
        node = self._sim(short).node
        if node is None:
            raise RuntimeError(f"node {short} is not running")
        return node

    def distribution(self, short: str) -> Distribution:
        router = self.node(short).router
        assert isinstance(router, Distribution)
        return router

    def nodes(self, short: str) -> list[str]:
        """The nodes ``short`` is connected to."""
        return self.distribution(short).nodes()

    def address(self, short: str) -> str:
        """The listen address of node ``short`` (``"a:4370"``)."""
        return f"{short}:{SIMULATION_PORT}"

    def running(self) -> list[str]:
        """The short names of the nodes that are running."""
        return [sim.short for sim in self._nodes.values() if sim.node is not None]

    def _sim(self, short: str) -> _SimNode:
        try:
            return self._nodes[short]
        except KeyError:
            raise KeyError(f"no node {short!r} in this cluster") from None

    async def run(self, short: str, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``fn(*args)`` as a process on node ``short`` and return its result."""
        return await self.node(short).run(fn, *args)

    def spawn(self, short: str, fn: Callable[..., Awaitable[Any]], *args: Any, **opts: Any) -> Any:
        """Start ``fn(*args)`` as a process on node ``short``; return its pid."""
        return self.node(short).spawn(fn, *args, **opts)

    # -- lifecycle ------------------------------------------------------------------

    async def start(self, short: str) -> None:
        """Start node ``short`` (again, after ``crash``) and wait until it listens.

        It connects to its seeds in the background; see ``wait_connected``.
        """
        sim = self._sim(short)
        if sim.node is not None:
            raise RuntimeError(f"node {short} is already running")
        assert self._nursery is not None
        sim.stopped = trio.Event()
        await self._nursery.start(self._node_main, sim)

    async def add(self, short: str, *, seeds: Iterable[str] | None = None, **options: Any) -> None:
        """Start a new node ``short`` in the running cluster.

        Args:
            short: its short name (node ``"d"`` is ``"d@d"``).
            seeds: the short names of the nodes it knows (default: all).
            **options: ``start_distribution`` options for this node only
                (``hidden=True``, ``auto_connect="never"``...).
        """
        if short in self._nodes:
            raise ValueError(f"the cluster already has a node {short!r}")
        self._nodes[short] = _SimNode(short, list(seeds) if seeds is not None else None, options)
        await self.start(short)

    async def _node_main(
        self, sim: _SimNode, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        options = {**self._options, **sim.options}
        options.setdefault("cookie", SIMULATION_COOKIE)
        if sim.seeds is None:
            seeds = [self.address(o.short) for o in self._nodes.values() if o is not sim]
        else:
            seeds = [self.address(short) for short in sim.seeds]
        try:
            with trio.CancelScope() as scope:
                sim.scope = scope
                async with open_local_node(watchdog_threshold=None) as node:
                    dist = await start_distribution(
                        sim.name,
                        node=node,
                        port=SIMULATION_PORT,
                        seeds=tuple(seeds),
                        transport=self.network.transport(sim.short),
                        **options,
                    )
                    sim.node = node
                    sim.address = dist.listen_address
                    task_status.started()
                    try:
                        await trio.sleep_forever()
                    finally:
                        dist.shutdown()
        finally:
            sim.node = None
            sim.scope = None
            sim.stopped.set()

    def crash(self, short: str) -> None:
        """Stop node ``short`` at once, as a SIGKILL would."""
        sim = self._sim(short)
        if sim.scope is None:
            raise RuntimeError(f"node {short} is not running")
        sim.scope.cancel()

    async def stop(self, short: str) -> None:
        """Crash node ``short`` and wait until it is gone."""
        self.crash(short)
        await self._sim(short).stopped.wait()

    async def restart(self, short: str) -> None:
        """Crash node ``short`` if it runs, then start it again with a new creation."""
        sim = self._sim(short)
        if sim.scope is not None:
            await self.stop(short)
        await self.start(short)

    # -- the network ------------------------------------------------------------------

    def partition(self, *groups: Iterable[str]) -> None:
        """Split the network: no byte crosses between nodes of different groups."""
        sets = [set(group) for group in groups]
        for i, group in enumerate(sets):
            for other in sets[i + 1 :]:
                for a in group:
                    for b in other:
                        self.network.block(self._sim(a).short, self._sim(b).short)

    def heal(self) -> None:
        """End every partition."""
        self.network.unblock_all()

    def delay(self, seconds: float, a: str | None = None, b: str | None = None) -> None:
        """Delay bytes between ``a`` and ``b`` (or everywhere) by ``seconds``; 0 ends it."""
        self.network.set_delay(seconds, a, b)

    async def wait_until(
        self, predicate: Callable[[], bool], timeout: float = 60.0, poll: float = 0.01
    ) -> None:
        """Poll ``predicate`` until it is true (in virtual time under ``MockClock``).

        Raises:
            trio.TooSlowError: still false after ``timeout`` seconds.
        """
        with trio.fail_after(timeout):
            while not predicate():  # noqa: ASYNC110 - any predicate, so polling
                await trio.sleep(poll)

    async def wait_connected(self, timeout: float = 60.0) -> None:
        """Wait until every running node is connected to every other running node.

        Hidden nodes (``hidden=True``) are left out: they join no mesh.
        """
        running = [
            sim
            for sim in self._nodes.values()
            if sim.node is not None and not {**self._options, **sim.options}.get("hidden")
        ]

        def meshed() -> bool:
            for sim in running:
                router = sim.node.router if sim.node is not None else None
                if not isinstance(router, Distribution):
                    return False
                peers = set(router.peers)
                if any(other.name not in peers for other in running if other is not sim):
                    return False
            return True

        await self.wait_until(meshed, timeout)


@asynccontextmanager
async def simulated_cluster(
    names: Iterable[str] = ("a", "b", "c"),
    *,
    connect: bool = True,
    ticktime: float = 4.0,
    seed_interval: float = 1.0,
    seeds: Mapping[str, Iterable[str]] | None = None,
    **options: Any,
) -> AsyncIterator[SimulatedCluster]:
    """Run a cluster of nodes named ``names`` in this ``trio.run``.

    Args:
        names: short node names; node ``"a"`` is named ``"a@a"``.
        connect: wait until the nodes form a full mesh before yielding.
        ticktime: seconds of silence before a peer is declared down.
        seed_interval: seconds between reconnection attempts to the seeds.
        seeds: for some nodes, the short names of their seeds (``{"c": ["b"]}``);
            a node not listed has every other node as a seed.
        **options: more options for ``start_distribution`` (``cookie``, ``busy_limit``...).

    Yields:
        The ``SimulatedCluster``.
    """
    sim = SimulatedCluster(
        list(names), {"ticktime": ticktime, "seed_interval": seed_interval, **options}, seeds
    )
    async with trio.open_nursery() as nursery:
        sim._nursery = nursery
        for short in sim._nodes:
            await sim.start(short)
        if connect:
            await sim.wait_connected()
        try:
            yield sim
        finally:
            nursery.cancel_scope.cancel()


__all__ += ["SIMULATION_COOKIE", "SIMULATION_PORT"]
