"""The conformance suite every PubSub adapter passes (as ``trio.testing.check_two_way_stream``).

``await check_pubsub_adapter(cluster, ["a", "b", "c"], adapter=..., outage=...)``
starts a PubSub with that adapter on each node, checks the behaviour beamlet
promises whatever the adapter (delivery on every node, duplicates,
unsubscribe, cleanup at exit, ``broadcast_from``, local and direct
broadcasts, order per publisher, custom dispatchers, bad input, the
slow-subscriber bound, and what an outage between the nodes does), and stops
it again. It raises ``AssertionError`` naming the check that failed.

The ``"outage"`` check needs an ``Outage``: what cuts a node off from the
others and ends that again depends on what joins the nodes. ``Partition``
is the one for ``SimulatedCluster`` (a network partition, then the heal);
beamlet's own tests run the Redis adapter's with ``redis-server`` SIGKILLed
and started again. Without one, leave the check out explicitly
(``checks=[c for c in CHECKS if c != "outage"]``): ``check_pubsub_adapter``
refuses to skip it silently.

``cluster`` runs nodes in this ``trio.run``: anything with
``await cluster.run(node, fn, *args)`` (run ``fn`` as a process on ``node``,
return its result) and ``cluster.spawn(node, fn, *args)`` (start it, return
its pid), such as ``beamlet.cluster.simulation.SimulatedCluster``. The nodes
need not be connected to each other unless the adapter needs it. Results
come back through Python objects shared in this run, never through
messages between nodes, so the suite tests the adapter alone. It works
under ``MockClock(autojump_threshold=0)`` (do not autojump while an adapter
talks to a real server) and with the real clock.

Absence is checked without sleeping: after an operation that must not reach
a subscriber, the same process broadcasts a marker; since messages of one
publisher keep their order, the marker's arrival proves the first message
would have arrived before it.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import trio
import trio.lowlevel
from beamlet.actors import Pid, Registry, monitor, receive, self_pid, send_exit
from beamlet.actors.lowlevel import current_node

from ._dispatch import dispatcher
from ._pubsub import (
    PubSub,
    UnknownPubSubError,
    broadcast,
    broadcast_from,
    direct_broadcast,
    local_broadcast,
    local_broadcast_from,
    node_name,
    stats,
    subscribe,
    unsubscribe,
)

__all__ = ["CHECKS", "ClusterLike", "Outage", "Partition", "check_pubsub_adapter"]

PUBSUB = "beamlet_conformance"
MARK = "marker"
AGENT = "beamlet.conformance.agent"
#: Bytes of a message over the codec's default limit (8 MiB).
TOO_LARGE = 9 * 1024 * 1024
#: How long ``ready`` first waits for a round of broadcasts, and at most (it doubles).
READY_FIRST_WAIT, READY_MAX_WAIT = 0.05, 1.0


class ClusterLike(Protocol):
    """Nodes in this ``trio.run`` (``SimulatedCluster`` is one)."""

    async def run(self, node: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any: ...

    def spawn(self, node: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any: ...


class Outage(Protocol):
    """How the ``"outage"`` check cuts a node off from the others, and ends that.

    Attributes:
        counts: the key of ``stats(pubsub)`` that counts, on the node cut
            off, the broadcasts that could not leave it (the Redis adapter's
            ``"redis_send_drops"``), or None if the adapter cannot know (the
            cluster adapter: a partitioned node no longer knows the others).
    """

    counts: str | None

    async def cut(self, node: str) -> None:
        """Cut ``node`` off from every other node; return once ``node`` knows it.

        It may cut the others off from each other too (Redis down cuts every
        node off).
        """
        ...

    async def heal(self) -> None:
        """End the outage. The suite then waits until the nodes hear each other."""
        ...


class Partition:
    """The ``Outage`` of a ``SimulatedCluster``: a network partition, then the heal.

    ``cut(node)`` partitions ``node`` from every other running node and
    returns once ``node`` has lost them all (its net tick ran out: start the
    cluster with a short ``ticktime``, such as 4 seconds, and a ``MockClock``);
    ``heal()`` ends the partition and returns once the nodes are connected
    again. ``counts`` is None: a partitioned node no longer knows the others,
    so the cluster adapter has no one it failed to send to.

    Args:
        sim: the cluster (``beamlet.cluster.simulation.SimulatedCluster``).
        timeout: seconds (virtual, under a ``MockClock``) ``cut`` and
            ``heal`` may take.
    """

    counts: str | None = None

    def __init__(self, sim: Any, timeout: float = 120.0) -> None:
        self.sim = sim
        self.timeout = timeout

    async def cut(self, node: str) -> None:
        """Partition ``node`` from the others; return once it has lost them."""
        sim = self.sim
        sim.partition({node}, set(sim.running()) - {node})
        await sim.wait_until(lambda: sim.nodes(node) == [], timeout=self.timeout)

    async def heal(self) -> None:
        """End the partition; return once the nodes are connected again."""
        self.sim.heal()
        await self.sim.wait_connected(timeout=self.timeout)


@dispatcher("beamlet.conformance.tagged")
def _tagged(entries: list[tuple[Pid, Any]], from_pid: Pid | None, message: Any) -> None:
    """Deliver ``(metadata, message)``: shows that metadata and the name crossed."""
    node = current_node()
    for pid, meta in entries:
        if pid != from_pid:
            node.send(None, pid, (meta, message))


class _Inbox:
    """What one listener process received, shared with the suite."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.items: list[Any] = []
        self.pid: Pid | None = None
        self._changed = trio.Event()

    def put(self, item: Any) -> None:
        self.items.append(item)
        self._changed.set()
        self._changed = trio.Event()

    async def until(
        self, what: str, predicate: Callable[[list[Any]], bool], timeout: float
    ) -> None:
        with trio.move_on_after(timeout):
            while not predicate(self.items):
                await self._changed.wait()
            return
        raise AssertionError(f"{what}: the listener on {self.node} got only {self.items!r}")

    async def marked(self, check: str, k: int, timeout: float) -> list[Any]:
        """Wait for marker ``k``; return what came before it since the last marker."""
        await self.until(check, lambda items: (MARK, k) in items, timeout)
        items = self.items[: self.items.index((MARK, k))]
        start = max((i + 1 for i, m in enumerate(items) if _is_mark(m)), default=0)
        return items[start:]


def _is_mark(item: Any) -> bool:
    return type(item) is tuple and len(item) == 2 and item[0] == MARK


async def _listener(
    topics: list[tuple[str, Any, int | None]],
    inbox: _Inbox,
    started: trio.Event,
    gate: trio.Event | None,
) -> None:
    for topic, metadata, max_pending in topics:
        subscribe(PUBSUB, topic, metadata, max_pending=max_pending)
    inbox.pid = self_pid()
    started.set()
    if gate is not None:  # a slow subscriber: let messages pile up first
        await gate.wait()
        while True:
            try:
                inbox.put(await receive(timeout=0))
            except trio.TooSlowError:
                break
    while True:
        msg = await receive()
        if type(msg) is tuple and len(msg) == 2 and msg[0] == AGENT:
            await msg[1]()  # a function to run in this process (sent locally only)
        else:
            inbox.put(msg)


async def _holder(options: dict[str, Any], ready: trio.Event, stop: trio.Event) -> None:
    await PubSub.start_link(PUBSUB, **options)
    ready.set()
    await stop.wait()


def _holds(tokens: set[tuple[str, int]], items: list[Any]) -> bool:
    return all(token in items for token in tokens)


async def _broadcast_token(topic: str, token: tuple[str, int]) -> None:
    broadcast(PUBSUB, topic, token)


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


async def _seq(*calls: tuple[Any, ...]) -> list[Any]:
    """Run ``(fn, *args)`` calls in order in one process: one publisher."""
    return [fn(*args) for fn, *args in calls]


async def _attempt(*calls: tuple[Any, ...]) -> list[BaseException]:
    """Run ``(fn, *args)`` calls in order in one process; what they raised."""
    raised: list[BaseException] = []
    for fn, *args in calls:
        try:
            fn(*args)
        except Exception as exc:
            raised.append(exc)
    return raised


async def _raises(fn: Callable[..., Any], *args: Any) -> BaseException | None:
    try:
        fn(*args)
    except Exception as exc:
        return exc
    return None


class _Suite:
    def __init__(
        self,
        cluster: ClusterLike,
        nodes: Sequence[str],
        timeout: float,
        outage: Outage | None = None,
    ) -> None:
        self.cluster = cluster
        self.nodes = list(nodes)
        self.timeout = timeout
        self.cut = outage
        self.marks = 0
        self.rounds = 0

    async def listen(
        self,
        node: str,
        *topics: str | tuple[str, Any, int | None],
        gate: trio.Event | None = None,
    ) -> _Inbox:
        inbox = _Inbox(node)
        started = trio.Event()
        specs = [(t, None, None) if isinstance(t, str) else t for t in (*topics, MARK)]
        self.cluster.spawn(node, _listener, specs, inbox, started, gate)
        await started.wait()
        return inbox

    async def publish(self, node: str, *calls: tuple[Any, ...]) -> int:
        """Run ``calls`` then broadcast a marker, from one process on ``node``."""
        self.marks += 1
        k = self.marks
        await self.cluster.run(node, _seq, *calls, (broadcast, PUBSUB, MARK, (MARK, k)))
        return k

    async def run(self, node: str, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.cluster.run(node, _call, fn, *args)

    # -- the checks ---------------------------------------------------------------------

    async def ready(self, check: str = "ready") -> None:
        """Wait until a broadcast from each node reaches every other node.

        In rounds: each node's listener broadcasts the round's token, and the
        next round starts only if some token of this one has not arrived
        everywhere within a while (longer each round). Each node's tokens come
        from one publisher, in order, so once a round has arrived, nothing of
        an earlier one is still on its way: no broadcast of ``ready`` is in
        flight when the next check starts (the outage check counts what could
        not go out, and would count one caught by the cut).
        """
        self.rounds += 1
        topic = f"ready.{self.rounds}"
        inboxes = {n: await self.listen(n, topic) for n in self.nodes}
        wait = READY_FIRST_WAIT
        with trio.move_on_after(self.timeout):
            for r in itertools.count():
                tokens = {(n, r) for n in self.nodes}
                for n, inbox in inboxes.items():
                    raised = await self._in_process(
                        n, inbox, functools.partial(_broadcast_token, topic, (n, r))
                    )
                    assert raised is None, f"{check}: a broadcast on {n} raised {raised!r}"
                with trio.move_on_after(wait):
                    for inbox in inboxes.values():
                        await inbox.until(check, functools.partial(_holds, tokens), math.inf)
                    return
                wait = min(2 * wait, READY_MAX_WAIT)
        raise AssertionError(
            f"{check}: the nodes did not hear each other's broadcasts: "
            + repr({n: i.items for n, i in inboxes.items()})
        )

    async def broadcast_everywhere(self) -> None:
        a = self.nodes[0]
        inboxes = [await self.listen(n, "t.all") for n in self.nodes]
        sent = ("hello", [1, 2], {"k": (3, None)})
        k = await self.publish(a, (broadcast, PUBSUB, "t.all", sent))
        for inbox in inboxes:
            got = await inbox.marked("broadcast reaches every node once", k, self.timeout)
            assert got == [sent], f"broadcast: {inbox.node} got {got!r}, not [{sent!r}]"
        assert inboxes[0].items[0] is sent, "a local subscriber gets the very object sent"

    async def duplicates_and_unsubscribe(self) -> None:
        a, b = self.nodes[0], self.nodes[1]
        inbox = await self.listen(b, "t.dup", "t.dup")
        k = await self.publish(a, (broadcast, PUBSUB, "t.dup", 1))
        got = await inbox.marked("subscribing twice delivers twice", k, self.timeout)
        assert got == [1, 1], f"subscribing twice: got {got!r}, not [1, 1]"
        assert inbox.pid is not None

        async def unsubscribe_twice() -> None:
            unsubscribe(PUBSUB, "t.dup")
            unsubscribe(PUBSUB, "t.dup")  # not subscribed: a no-op

        gone = await self._in_process(b, inbox, unsubscribe_twice)
        assert gone is None, f"unsubscribe raised {gone!r}"
        k = await self.publish(a, (broadcast, PUBSUB, "t.dup", 2))
        got = await inbox.marked("unsubscribe removes every duplicate", k, self.timeout)
        assert got == [], f"after unsubscribe: got {got!r}"

    async def _in_process(
        self, node: str, inbox: _Inbox, fn: Callable[[], Awaitable[None]]
    ) -> BaseException | None:
        """Run ``fn`` in the listener's own process (subscriptions are per process)."""
        done: list[BaseException | None] = []
        finished = trio.Event()
        assert inbox.pid is not None

        async def agent() -> None:
            try:
                await fn()
                done.append(None)
            except Exception as exc:
                done.append(exc)
            finished.set()

        # The listener runs ``agent`` when it gets it: a function is a local
        # message, never one that crosses nodes.
        await self.cluster.run(node, _send_local, inbox.pid, (AGENT, agent))
        await finished.wait()
        return done[0]

    async def exit_cleans_up(self) -> None:
        b = self.nodes[1]
        inbox = await self.listen(b, "t.exit")
        assert inbox.pid is not None
        pid = inbox.pid

        async def kill_and_wait() -> list[Any]:
            ref = monitor(pid)
            send_exit(pid, "kill")
            await receive(lambda m: getattr(m, "ref", None) == ref)
            return Registry.lookup(PUBSUB, "t.exit")

        left = await self.cluster.run(b, kill_and_wait)
        assert left == [], f"a subscriber that exited is still subscribed: {left!r}"

    async def broadcast_from_skips(self) -> None:
        a, b = self.nodes[0], self.nodes[1]
        here, there = await self.listen(a, "t.from"), await self.listen(b, "t.from")
        assert here.pid is not None and there.pid is not None
        k = await self.publish(a, (broadcast_from, PUBSUB, here.pid, "t.from", "x"))
        assert await here.marked("broadcast_from skips from_pid", k, self.timeout) == []
        assert await there.marked("broadcast_from reaches the others", k, self.timeout) == ["x"]
        # from_pid on another node: skipped there, delivered here
        k = await self.publish(a, (broadcast_from, PUBSUB, there.pid, "t.from", "y"))
        assert await here.marked("broadcast_from a remote pid", k, self.timeout) == ["y"]
        assert await there.marked("broadcast_from skips a remote from_pid", k, self.timeout) == []

    async def local_broadcasts(self) -> None:
        a, b = self.nodes[0], self.nodes[1]
        here, other, there = (
            await self.listen(a, "t.local"),
            await self.listen(a, "t.local"),
            await self.listen(b, "t.local"),
        )
        assert here.pid is not None
        unencodable = object()  # never encoded: any value goes locally
        k = await self.publish(
            a,
            (local_broadcast, PUBSUB, "t.local", unencodable),
            (local_broadcast_from, PUBSUB, here.pid, "t.local", "from"),
        )
        assert await here.marked("local_broadcast", k, self.timeout) == [unencodable]
        assert await other.marked("local_broadcast_from", k, self.timeout) == [unencodable, "from"]
        assert await there.marked("local_broadcast stays local", k, self.timeout) == []

    async def direct_broadcasts(self) -> None:
        a, b = self.nodes[0], self.nodes[1]
        inboxes = [await self.listen(n, "t.direct") for n in self.nodes]
        b_name = await self.run(b, node_name, PUBSUB)
        a_name = await self.run(a, node_name, PUBSUB)
        assert isinstance(b_name, str) and b_name != a_name, "node_name differs per node"
        k = await self.publish(
            a,
            (direct_broadcast, b_name, PUBSUB, "t.direct", "to b"),
            (direct_broadcast, a_name, PUBSUB, "t.direct", "to a"),
            (direct_broadcast, "nobody@nowhere", PUBSUB, "t.direct", "lost"),
            (direct_broadcast, "not a node name", PUBSUB, "t.direct", "lost"),
        )
        for node, inbox in zip(self.nodes, inboxes, strict=True):
            got = await inbox.marked("direct_broadcast", k, self.timeout)
            want = ["to a"] if node == a else ["to b"] if node == b else []
            assert got == want, f"direct_broadcast: {node} got {got!r}, not {want!r}"

    async def order_per_publisher(self) -> None:
        a, b = self.nodes[0], self.nodes[1]
        inbox = await self.listen(b, "t.order.1", "t.order.2")
        n = 200
        calls = [(broadcast, PUBSUB, f"t.order.{1 + i % 2}", ("p", i)) for i in range(n)]
        done = trio.Event()

        async def other_publisher() -> None:
            for i in range(n):
                broadcast(PUBSUB, "t.order.1", ("q", i))
                if i % 10 == 0:
                    await trio.lowlevel.checkpoint()
            done.set()

        self.cluster.spawn(a, other_publisher)
        k = await self.publish(a, *calls)
        await done.wait()
        await inbox.until(
            "both publishers' messages arrive", lambda items: len(items) >= 2 * n + 1, self.timeout
        )
        got = [m for m in inbox.items if not _is_mark(m)]
        assert [m[1] for m in got if m[0] == "p"] == list(range(n)), "order of publisher p"
        assert [m[1] for m in got if m[0] == "q"] == list(range(n)), "order of publisher q"
        del k

    async def custom_dispatcher(self) -> None:
        a, b = self.nodes[0], self.nodes[1]
        here = await self.listen(a, ("t.disp", "meta-a", None))
        there = await self.listen(b, ("t.disp", "meta-b", None))
        k = await self.publish(
            a,
            (broadcast, PUBSUB, "t.disp", 1, "beamlet.conformance.tagged"),
            (broadcast, PUBSUB, "t.disp", 2, _tagged),
        )
        assert await here.marked("dispatcher", k, self.timeout) == [("meta-a", 1), ("meta-a", 2)]
        assert await there.marked("remote dispatcher", k, self.timeout) == [
            ("meta-b", 1),
            ("meta-b", 2),
        ]

    async def bad_input(self) -> None:
        a = self.nodes[0]
        inboxes = [await self.listen(n, "t.bad") for n in self.nodes]

        def unregistered(entries: Any, from_pid: Any, message: Any) -> None:
            pass

        b_name = await self.run(self.nodes[1], node_name, PUBSUB)
        cases: list[tuple[str, type[BaseException], Callable[..., Any], tuple[Any, ...]]] = [
            ("unencodable", TypeError, broadcast, (PUBSUB, "t.bad", object())),
            ("unencodable from", TypeError, _broadcast_from_self, ("t.bad", {1j})),
            (
                "unencodable direct",
                TypeError,
                direct_broadcast,
                (b_name, PUBSUB, "t.bad", object()),
            ),
            ("too large", ValueError, broadcast, (PUBSUB, "t.bad", b"x" * TOO_LARGE)),
            ("topic not a str", TypeError, broadcast, (PUBSUB, b"t.bad", 1)),
            ("topic not a str (local)", TypeError, local_broadcast, (PUBSUB, 7, 1)),
            ("topic not a str (direct)", TypeError, direct_broadcast, (b_name, PUBSUB, None, 1)),
            ("topic not a str (subscribe)", TypeError, subscribe, (PUBSUB, ("t.bad",))),
            ("node not a str (direct)", TypeError, direct_broadcast, (7, PUBSUB, "t.bad", 1)),
            ("unknown pubsub", UnknownPubSubError, broadcast, ("no such pubsub", "t.bad", 1)),
            ("unregistered dispatcher", TypeError, broadcast, (PUBSUB, "t.bad", 1, unregistered)),
            ("unknown dispatcher", LookupError, broadcast, (PUBSUB, "t.bad", 1, "no.such")),
        ]
        for what, kind, fn, args in cases:
            exc = await self.cluster.run(a, _raises, fn, *args)
            assert isinstance(exc, kind), f"bad input ({what}): got {exc!r}, not {kind.__name__}"
        k = await self.publish(a, (broadcast, PUBSUB, "t.bad", "good"))
        for inbox in inboxes:
            got = await inbox.marked("bad input sends nothing", k, self.timeout)
            assert got == ["good"], f"bad input: {inbox.node} got {got!r}"

    async def slow_subscriber(self) -> None:
        a, b = self.nodes[0], self.nodes[1]
        gate = trio.Event()
        slow = await self.listen(b, ("t.slow", None, 3), gate=gate)
        fast = await self.listen(b, "t.slow")
        before = (await self.run(b, stats, PUBSUB))["slow_subscriber_drops"]
        calls = [(broadcast, PUBSUB, "t.slow", i) for i in range(10)]
        k = await self.publish(a, *calls)
        assert await fast.marked("the others of a slow subscriber", k, self.timeout) == list(
            range(10)
        )
        after = (await self.run(b, stats, PUBSUB))["slow_subscriber_drops"]
        # Three waited in its mailbox; the other seven were dropped (the
        # marker too: the slow one subscribed to it without a bound).
        assert after - before == 7, f"slow subscriber: {after - before} drops counted, not 7"
        gate.set()
        await slow.until("the slow subscriber's kept messages", lambda i: len(i) >= 4, self.timeout)
        assert slow.items[:3] == [0, 1, 2], f"slow subscriber kept {slow.items!r}"

    async def outage(self) -> None:
        """A node cut off: its broadcasts return, reach its own subscribers only,
        are counted if the adapter can, are never replayed; afterwards all is as before."""
        assert self.cut is not None
        a, b = self.nodes[0], self.nodes[1]
        inboxes = {n: await self.listen(n, "t.outage") for n in self.nodes}
        b_name = await self.run(b, node_name, PUBSUB)
        counts = self.cut.counts
        before = (await self.run(a, stats, PUBSUB))[counts] if counts is not None else 0

        await self.cut.cut(a)
        self.marks += 1
        k = self.marks
        raised = await self.cluster.run(
            a,
            _attempt,
            (broadcast, PUBSUB, "t.outage", "during"),
            (direct_broadcast, b_name, PUBSUB, "t.outage", "direct during"),
            (broadcast, PUBSUB, MARK, (MARK, k)),
        )
        assert raised == [], f"outage: a broadcast on a node cut off raised {raised!r}"
        exc = await self.cluster.run(a, _raises, broadcast, PUBSUB, "t.outage", object())
        assert isinstance(exc, TypeError), f"outage: an unencodable message got {exc!r}"
        got = await inboxes[a].marked("outage: local subscribers still get it", k, self.timeout)
        assert got == ["during"], f"outage: {a} got {got!r}, not ['during']"
        if counts is not None:
            lost = (await self.run(a, stats, PUBSUB))[counts] - before
            # the broadcast, the direct one and the marker
            assert lost == 3, f"outage: {lost} broadcasts counted in {counts!r}, not 3"
        k = await self.publish(b, (broadcast, PUBSUB, "t.outage", "b during"))
        got = await inboxes[b].marked("outage: the other side's own subscribers", k, self.timeout)
        assert got == ["b during"], f"outage: {b} got {got!r}, not ['b during']"

        await self.cut.heal()
        await self.ready("outage: after it ends, the nodes hear each other again")
        k = await self.publish(a, (broadcast, PUBSUB, "t.outage", "after"))
        for node, inbox in inboxes.items():
            await inbox.marked("outage: a broadcast after it ends", k, self.timeout)
            got = [m for m in inbox.items if not _is_mark(m)]
            if node == a:
                assert got == ["during", "after"], f"outage: {a} got {got!r}"
            else:
                lost = [m for m in ("during", "direct during") if m in got]
                assert lost == [], f"outage: {node} got {lost!r}, sent while cut off"
                assert got[-1:] == ["after"], f"outage: {node} got {got!r}"


def _broadcast_from_self(topic: str, message: Any) -> None:
    broadcast_from(PUBSUB, self_pid(), topic, message)


async def _send_local(pid: Pid, msg: Any) -> None:
    current_node().send(None, pid, msg)


CHECKS = [
    "broadcast_everywhere",
    "duplicates_and_unsubscribe",
    "exit_cleans_up",
    "broadcast_from_skips",
    "local_broadcasts",
    "direct_broadcasts",
    "order_per_publisher",
    "custom_dispatcher",
    "bad_input",
    "slow_subscriber",
    "outage",
]


async def check_pubsub_adapter(
    cluster: ClusterLike,
    nodes: Sequence[str],
    *,
    adapter: Any = "cluster",
    timeout: float = 10.0,
    checks: Sequence[str] | None = None,
    outage: Outage | None = None,
    **options: Any,
) -> None:
    """Run the conformance suite for ``adapter`` on ``nodes`` of ``cluster``.

    Args:
        cluster: runs processes on the nodes (see ``ClusterLike``).
        nodes: at least two nodes (three exercise more).
        adapter: as ``PubSub.start_link``'s ``adapter``.
        timeout: seconds any one wait may take.
        checks: run only these (names from ``CHECKS``); all by default.
        outage: cuts a node off and ends that, for the ``"outage"`` check
            (see ``Outage``); needed whenever that check runs.
        options: other options for ``PubSub.start_link`` (``pool_size``,
            the adapter's own).

    Raises:
        AssertionError: a check failed; the message names it.
        ValueError: fewer than two nodes, an unknown check, or the
            ``"outage"`` check without ``outage``.
    """
    if len(nodes) < 2:
        raise ValueError("the conformance suite needs at least two nodes")
    selected = list(CHECKS if checks is None else checks)
    unknown = [name for name in selected if name not in CHECKS]
    if unknown:
        raise ValueError(f"unknown conformance checks {unknown!r}; the checks are {CHECKS!r}")
    if "outage" in selected and outage is None:
        raise ValueError(
            "the 'outage' check needs outage=... (an Outage that cuts a node off and ends "
            "that); to run without it, leave it out: checks=[c for c in CHECKS if c != 'outage']"
        )
    suite = _Suite(cluster, nodes, timeout, outage)
    stop = trio.Event()
    for node in nodes:
        ready = trio.Event()
        cluster.spawn(node, _holder, {"adapter": adapter, **options}, ready, stop)
        with trio.fail_after(timeout):
            await ready.wait()
    try:
        await suite.ready()
        for name in selected:
            await getattr(suite, name)()
    finally:
        stop.set()
