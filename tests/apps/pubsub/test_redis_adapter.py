"""The Redis adapter of PubSub against a real redis-server (the ``redis_server`` fixture).

The nodes here are local beamlet nodes in this ``trio.run`` that are not
distributed: nothing connects them but Redis. Real sockets, so real time;
every wait is bounded and on an event or a condition, with short timeouts.
"""

from __future__ import annotations

import logging
import sys
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import trio
from beamlet.actors import (
    Down,
    ExitSignal,
    Node,
    Pid,
    Ref,
    StartError,
    open_node,
    receive,
    send,
    trap_exits,
)
from beamlet.actors.lowlevel import Reply
from beamlet.apps._redis import open_redis
from beamlet.apps.pubsub import (
    PubSub,
    broadcast,
    direct_broadcast,
    node_name,
    stats,
    subscribe,
)
from beamlet.apps.pubsub._redis_adapter import RedisAdapter
from beamlet.apps.pubsub.testing import CHECKS, PUBSUB as CONFORMANCE, check_pubsub_adapter
from beamlet.cluster import decode, encode
from redis_server import RedisServer

WAIT = 10.0


def fast(server: RedisServer) -> dict[str, Any]:
    return {"url": server.url, "reconnect_initial": 0.01, "reconnect_max": 0.05}


class LocalNodes:
    """Local (not distributed) nodes in this ``trio.run``: a ``ClusterLike`` for the suite."""

    def __init__(self, nodes: dict[str, Node]) -> None:
        self.nodes = nodes

    async def run(self, node: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return await self.nodes[node].run(fn, *args)

    def spawn(self, node: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return self.nodes[node].spawn(fn, *args)


@asynccontextmanager
async def local_nodes(*names: str) -> AsyncIterator[LocalNodes]:
    async with AsyncExitStack() as stack:
        nodes = {
            n: await stack.enter_async_context(open_node(name=f"{n}@redis-test")) for n in names
        }
        yield LocalNodes(nodes)


async def eventually(what: str, predicate: Callable[[], Awaitable[bool]]) -> None:
    """Wait for a condition no event announces (another node's counters), bounded."""
    with trio.move_on_after(WAIT):
        while not await predicate():  # noqa: ASYNC110 (a counter, not an event)
            await trio.sleep(0.01)
        return
    raise AssertionError(f"{what}: not within {WAIT} s")


async def _stats() -> dict[str, int]:
    return stats("chat")


async def _holder(options: dict[str, Any], ready: trio.Event, stop: trio.Event) -> None:
    await PubSub.start_link("chat", adapter="redis", **options)
    ready.set()
    await stop.wait()


async def _collector(inbox: list[Any], changed: list[trio.Event], topic: str) -> None:
    subscribe("chat", topic)
    changed[0].set()
    while True:
        inbox.append(await receive())
        changed[0].set()


class Inbox:
    def __init__(self) -> None:
        self.items: list[Any] = []
        self.changed = [trio.Event()]

    async def until(self, predicate: Callable[[list[Any]], bool]) -> None:
        with trio.fail_after(WAIT):
            while not predicate(self.items):
                self.changed[0] = trio.Event()
                await self.changed[0].wait()


async def start_chat(cluster: LocalNodes, stop: trio.Event, **options: Any) -> dict[str, Inbox]:
    """Start PubSub "chat" on every node with a collector subscribed to "room" on each."""
    inboxes = {}
    for name in cluster.nodes:
        ready = trio.Event()
        cluster.spawn(name, _holder, options, ready, stop)
        with trio.fail_after(WAIT):
            await ready.wait()
        inbox = Inbox()
        cluster.spawn(name, _collector, inbox.items, inbox.changed, "room")
        with trio.fail_after(WAIT):
            await inbox.changed[0].wait()
        inboxes[name] = inbox
    return inboxes


@asynccontextmanager
async def chat_nodes(
    server: RedisServer, *names: str, **options: Any
) -> AsyncIterator[tuple[LocalNodes, dict[str, Inbox]]]:
    """Local nodes ``names`` joined by ``server``: ``start_chat`` with the ``fast``
    Redis options and ``options``; yields the nodes and their inboxes. The PubSubs
    are stopped on leaving."""
    stop = trio.Event()
    async with local_nodes(*names) as cluster:
        inboxes = await start_chat(cluster, stop, redis=fast(server), **options)
        try:
            yield cluster, inboxes
        finally:
            stop.set()


async def _broadcast(*messages: Any) -> None:
    for message in messages:
        broadcast("chat", "room", message)


# -- the conformance suite ------------------------------------------------------------------


async def _conformance_stats() -> dict[str, int]:
    return stats(CONFORMANCE)


class RedisOutage:
    """The suite's outage through Redis: redis-server SIGKILLed, then started again.

    Killing Redis cuts every node off, not only the one named. ``heal`` returns
    once every node has reconnected (with backoff) and subscribed again; the
    suite then checks that broadcasts flow as before.
    """

    counts = "redis_send_drops"

    def __init__(self, server: RedisServer, cluster: LocalNodes) -> None:
        self.server = server
        self.cluster = cluster
        self.outages = 0

    async def _all(self, what: str, predicate: Callable[[dict[str, int]], bool]) -> None:
        for node in self.cluster.nodes:

            async def holds(node: str = node) -> bool:
                return predicate(await self.cluster.run(node, _conformance_stats))

            await eventually(f"{what} on {node}", holds)

    async def cut(self, node: str) -> None:
        assert node in self.cluster.nodes
        self.server.kill()
        await self._all("Redis seen down", lambda s: s["redis_up"] == 0)

    async def heal(self) -> None:
        await self.server.restart_async()
        self.outages += 1
        n = self.outages
        await self._all(
            "reconnected and subscribed again",
            lambda s: (
                s["redis_up"] == 1
                and s["redis_reconnects"] == n
                and s["redis_resubscriptions"] == n
            ),
        )


async def conform(server: RedisServer, *names: str, **options: Any) -> RedisOutage:
    """Run the conformance suite on local nodes ``names`` joined by ``server`` (the
    ``fast`` Redis options, the Redis adapter unless ``options`` names another, and
    ``options``); the outage it went through."""
    options.setdefault("adapter", "redis")
    async with local_nodes(*names) as cluster:
        outage = RedisOutage(server, cluster)
        await check_pubsub_adapter(
            cluster, list(names), redis=fast(server), outage=outage, **options
        )
    return outage


async def test_redis_adapter_conforms(redis_server: RedisServer) -> None:
    outage = await conform(redis_server, "a", "b", "c")
    assert outage.outages == 1


async def test_redis_adapter_conforms_with_shards_and_compression(
    redis_server: RedisServer,
) -> None:
    await conform(redis_server, "a", "b", pool_size=3, broadcast_pool_size=2, compression_level=6)


@pytest.mark.parametrize("check", CHECKS)
async def test_each_check_alone(check: str, redis_server: RedisServer) -> None:
    await conform(redis_server, "a", "b", checks=[check])


class _Uncounted(RedisAdapter):
    """Drops what it cannot publish without counting it: silent loss."""

    def _dropped(self, count: int, why: str) -> None:
        pass


class _Raising(RedisAdapter):
    """Raises in the publisher while Redis is down: delivery must stay at-most-once."""

    def broadcast(self, topic: str, message: Any, dispatcher: str, from_pid: Any) -> None:
        live = self._live
        if live is not None and not live.redis.up:
            raise ConnectionError("Redis is down")
        super().broadcast(topic, message, dispatcher, from_pid)


@pytest.mark.parametrize(
    ("adapter", "words"),
    [(_Uncounted, "counted in 'redis_send_drops'"), (_Raising, "raised")],
)
async def test_the_outage_check_catches_a_broken_adapter(
    adapter: type[RedisAdapter], words: str, redis_server: RedisServer
) -> None:
    with pytest.raises(AssertionError, match=words):
        await conform(redis_server, "a", "b", adapter=adapter, checks=["outage"])


async def test_own_broadcasts_are_not_delivered_twice(redis_server: RedisServer) -> None:
    """Every node receives its own broadcasts back from Redis, and drops them.

    Redis delivers a channel's messages in one order to every subscriber: b
    broadcasts "after" only once it has "x", so a's copy of "x" reaches a
    before "after" does, and a duplicate would show up before "after".
    """
    async with chat_nodes(redis_server, "a", "b") as (cluster, inboxes):
        for round_ in range(3):
            await cluster.run("a", _broadcast, ("x", round_))
            await inboxes["b"].until(lambda items, r=round_: ("x", r) in items)
            await cluster.run("b", _broadcast, ("after", round_))
            await inboxes["a"].until(lambda items, r=round_: ("after", r) in items)
        want = [m for r in range(3) for m in (("x", r), ("after", r))]
        assert inboxes["a"].items == want
        assert inboxes["b"].items == want


# -- Redis down mid-run ---------------------------------------------------------------------


async def test_redis_killed_and_restarted_mid_run(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with chat_nodes(redis_server, "a", "b") as (cluster, inboxes):
        await cluster.run("a", _broadcast, "before")
        await inboxes["b"].until(lambda items: items == ["before"])

        redis_server.kill()
        for name in ("a", "b"):
            await eventually(
                f"{name} sees Redis down",
                lambda name=name: _is(cluster, name, "redis_up", 0),  # type: ignore[misc]
            )
        # A broadcast while Redis is down: counted and logged, not raised.
        await cluster.run("a", _broadcast, "lost 1", "lost 2")
        a_stats = await cluster.run("a", _stats)
        assert a_stats["redis_send_drops"] == 2
        # Local subscribers still get it: only the Redis hop is down.
        await inboxes["a"].until(lambda items: items == ["before", "lost 1", "lost 2"])
        drops = [
            r.getMessage() for r in caplog.records if "not published to Redis" in r.getMessage()
        ]
        assert len(drops) == 1 and "unavailable" in drops[0]

        await redis_server.restart_async()
        for name in ("a", "b"):
            await eventually(
                f"{name} resubscribed",
                lambda name=name: _resubscribed(cluster, name),  # type: ignore[misc]
            )
        await cluster.run("a", _broadcast, "after")
        await inboxes["b"].until(lambda items: items[-1:] == ["after"])
        assert inboxes["b"].items == ["before", "after"]
        b_stats = await cluster.run("b", _stats)
        assert b_stats["redis_up"] == 1 and b_stats["redis_reconnects"] == 1


async def _is(cluster: LocalNodes, node: str, key: str, value: int) -> bool:
    return bool((await cluster.run(node, _stats))[key] == value)


async def _resubscribed(cluster: LocalNodes, node: str) -> bool:
    s = await cluster.run(node, _stats)
    return bool(s["redis_up"] == 1 and s["redis_resubscriptions"] == 1)


async def test_a_stream_across_an_outage_keeps_order_and_counts_what_it_drops(
    redis_server: RedisServer,
) -> None:
    async with chat_nodes(redis_server, "a", "b") as (cluster, inboxes):
        sent = 0
        killed = trio.Event()
        done = trio.Event()

        async def publisher() -> None:
            nonlocal sent
            while not done.is_set():
                broadcast("chat", "room", sent)
                sent += 1
                await trio.sleep(0.001)

        cluster.spawn("a", publisher)
        await inboxes["b"].until(lambda items: len(items) >= 50)
        redis_server.kill()
        killed.set()
        await eventually("a sees Redis down", lambda: _is(cluster, "a", "redis_up", 0))
        await eventually(
            "a drops while down",
            lambda: _count_at_least(cluster, "a", "redis_send_drops", 20),
        )
        await redis_server.restart_async()
        await eventually("b resubscribed", lambda: _resubscribed(cluster, "b"))
        mark = len(inboxes["b"].items)
        await inboxes["b"].until(lambda items: len(items) >= mark + 50)
        done.set()
        got = inboxes["b"].items
        assert got == sorted(set(got)), "in order, no duplicates"
        assert len(got) < sent
        a_stats = await cluster.run("a", _stats)
        assert a_stats["redis_send_drops"] >= 20


async def _count_at_least(cluster: LocalNodes, node: str, key: str, value: int) -> bool:
    return bool((await cluster.run(node, _stats))[key] >= value)


async def test_starting_while_redis_is_down(redis_server: RedisServer) -> None:
    redis_server.kill()
    async with chat_nodes(redis_server, "a", "b") as (cluster, inboxes):
        assert (await cluster.run("a", _stats))["redis_up"] == 0
        await redis_server.restart_async()
        for name in ("a", "b"):
            await eventually(
                f"{name} up",
                lambda name=name: _is(cluster, name, "redis_up", 1),  # type: ignore[misc]
            )
            await eventually(
                f"{name} subscribed",
                lambda name=name: _subscribed(cluster, name),  # type: ignore[misc]
            )
        await cluster.run("a", _broadcast, "hi")
        await inboxes["b"].until(lambda items: items == ["hi"])


async def _subscribed(cluster: LocalNodes, node: str) -> bool:
    async def probe() -> bool:
        from beamlet.apps.pubsub._pubsub import _state

        adapter = _state("chat").adapter
        sub = adapter._subscription  # type: ignore[attr-defined]
        return sub is not None and bool(sub.subscribed)

    return bool(await cluster.run(node, probe))


# -- what arrives is checked ----------------------------------------------------------------


async def test_garbage_on_the_channels_is_dropped_counted_and_logged(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "beamlet.apps.pubsub")
    async with chat_nodes(redis_server, "a", "b") as (cluster, inboxes):
        channel = "beamlet:chat"
        b_channel = "beamlet:chat:node:b@redis-test"
        good = encode(("room", "forged", "beamlet.pubsub", None))

        def env(*fields: Any) -> bytes:
            return encode(fields)

        def bodies(*items: bytes) -> bytes:
            return encode(list(items))

        garbage = [
            (channel, b"\xc1 not msgpack"),
            (channel, b""),
            (channel, encode("not a tuple")),
            (channel, env(2, "b", "x@y", False, bodies(good))),  # another version
            (channel, env(1, "q", "x@y", False, bodies(good))),  # unknown kind
            (channel, env(1, "b", 7, False, bodies(good))),  # origin not a str
            (channel, env(1, "b", "x@y", "no", bodies(good))),  # flag not a bool
            (channel, env(1, "b", "x@y", False, "not bytes")),
            (channel, env(1, "d", "x@y", False, bodies(good))),  # direct on the common channel
            (b_channel, env(1, "b", "x@y", False, bodies(good))),  # a broadcast on b's own
            (channel, env(1, "b", "x@y", True, b"not zlib")),
            (channel, env(1, "b", "x@y", True, zlib.compress(b"\0" * 10_000_000))),  # a bomb
            (channel, env(1, "b", "x@y", False, b"\xc1")),  # a payload that does not decode
            (channel, env(1, "b", "x@y", False, encode("not a list"))),
            (channel, env(1, "b", "x@y", False, encode([good, "not bytes"]))),
            (channel, env(1, "b", "x@y", False, bodies(b"\xc1"))),  # a body that does not decode
            (channel, env(1, "b", "x@y", False, bodies(encode(("room", "x"))))),
            (channel, env(1, "b", "x@y", False, bodies(encode((7, "x", "beamlet.pubsub", None))))),
            (channel, env(1, "b", "x@y", False, bodies(encode(("room", "x", "no.such", None))))),
            (
                channel,
                env(1, "b", "x@y", False, bodies(encode(("room", "x", "beamlet.pubsub", 5)))),
            ),
        ]
        async with open_redis(redis_server.url) as redis:
            await redis.publish_many(garbage)
        await eventually(
            "every piece refused on b",
            lambda: _count_at_least(cluster, "b", "bad_input", len(garbage) - 1),
        )
        b_stats = await cluster.run("b", _stats)
        # b's own channel got one; the common channel reached b with all others.
        assert b_stats["bad_input"] == len(garbage)
        await cluster.run("a", _broadcast, "still serving")
        await inboxes["b"].until(lambda items: items == ["still serving"])
        refused = [r for r in caplog.records if "refused" in r.getMessage()]
        assert 1 <= len(refused) <= 2  # one line per node per period, at most


async def test_an_envelope_of_several_with_a_bad_one_delivers_the_good_ones(
    redis_server: RedisServer,
) -> None:
    async with chat_nodes(redis_server, "a", "b") as (cluster, inboxes):
        good = [encode(("room", i, "beamlet.pubsub", None)) for i in range(3)]
        bad = encode(("room", "x", "no.such", None))
        envelope = encode((1, "b", "x@y", False, encode([good[0], bad, good[1], good[2]])))
        async with open_redis(redis_server.url) as redis:
            await redis.publish("beamlet:chat", envelope)
        await inboxes["b"].until(lambda items: len(items) == 3)
        assert inboxes["b"].items == [0, 1, 2]
        assert (await cluster.run("b", _stats))["bad_input"] == 1


async def test_a_broadcast_that_carries_a_runtime_signal_is_refused(
    redis_server: RedisServer,
) -> None:
    # A Down or an ExitSignal is what the runtime delivers when a monitor fires or a
    # linked process exits: from another node, it would forge that to every subscriber.
    async with chat_nodes(redis_server, "a", "b") as (cluster, inboxes):
        forged = Pid("x@y", 1, 1)
        bodies = [
            encode(("room", ExitSignal(forged, "shutdown"), "beamlet.pubsub", None)),
            encode(("room", Down(Ref("x@y", 1, 1), forged, "killed"), "beamlet.pubsub", None)),
            encode(("room", Reply(Ref("x@y", 1, 1), "forged"), "beamlet.pubsub", None)),
            encode(("room", ("data", ExitSignal(forged, "x")), "beamlet.pubsub", None)),
        ]
        envelope = encode((1, "b", "x@y", False, encode(bodies)))
        async with open_redis(redis_server.url) as redis:
            await redis.publish("beamlet:chat", envelope)
        await inboxes["b"].until(lambda items: len(items) == 1)
        assert inboxes["b"].items == [("data", ExitSignal(forged, "x"))]
        assert (await cluster.run("b", _stats))["bad_input"] == 3


async def test_a_burst_travels_in_few_envelopes(redis_server: RedisServer) -> None:
    """Broadcasts queued together go out together: far fewer Redis messages than broadcasts."""
    async with (
        chat_nodes(redis_server, "a", "b") as (cluster, inboxes),
        open_redis(redis_server.url) as redis,
    ):
        async with redis.subscribe("beamlet:chat") as spy:
            with trio.fail_after(WAIT):
                await spy.wait_subscribed()
            await cluster.run("a", _broadcast, *range(2000))
            await inboxes["b"].until(lambda items: len(items) == 2000)
            assert inboxes["b"].items == list(range(2000))
            envelopes = carried = 0
            with trio.fail_after(WAIT):
                async for message in spy:
                    envelopes += 1
                    carried += len(decode(decode(message.data)[4]))
                    if carried == 2000:
                        break
        assert 4 <= envelopes <= 20  # at most MAX_BATCH (512) a message


# -- sending ---------------------------------------------------------------------------------


async def test_direct_broadcast_and_node_names(redis_server: RedisServer) -> None:
    async with chat_nodes(redis_server, "a", "b", "c") as (cluster, inboxes):

        async def direct() -> str:
            direct_broadcast("b@redis-test", "chat", "room", "to b")
            direct_broadcast("nobody", "chat", "room", "lost")
            broadcast("chat", "room", "mark")
            return node_name("chat")

        assert await cluster.run("a", direct) == "a@redis-test"
        for name in ("b", "c"):
            await inboxes[name].until(lambda items: "mark" in items)
        assert inboxes["b"].items == ["to b", "mark"]
        assert inboxes["c"].items == ["mark"]
        assert inboxes["a"].items == ["mark"]


async def test_a_full_queue_drops_and_counts(redis_server: RedisServer) -> None:
    async with chat_nodes(redis_server, "a", "b", max_queue=10) as (cluster, inboxes):
        # 100 broadcasts without a checkpoint: the publishing task cannot run meanwhile.
        await cluster.run("a", _broadcast, *range(100))
        drops = (await cluster.run("a", _stats))["redis_send_drops"]
        # 10 wait in the queue (and one more if the publishing task was waiting for it).
        assert drops in (89, 90)
        await inboxes["b"].until(lambda items: len(items) == 100 - drops)
        assert inboxes["b"].items == list(range(100 - drops))
        assert inboxes["a"].items == list(range(100))  # local delivery is not affected


async def test_large_messages_and_the_size_limit(redis_server: RedisServer) -> None:
    async with chat_nodes(redis_server, "a", "b", max_message_size=1_000_000) as (cluster, inboxes):
        big = [bytes([i]) * 1000 for i in range(200)]  # 200 KB: decoded in steps

        async def too_big() -> BaseException | None:
            try:
                broadcast("chat", "room", b"x" * 2_000_000)
            except ValueError as exc:
                return exc
            return None

        assert isinstance(await cluster.run("a", too_big), ValueError)
        await cluster.run("a", _broadcast, big)
        await inboxes["b"].until(lambda items: len(items) == 1)
        assert inboxes["b"].items == [big]


# -- options ---------------------------------------------------------------------------------


async def test_a_local_node_needs_a_node_name(redis_server: RedisServer) -> None:
    async with open_node() as node:

        async def main() -> str:
            trap_exits(True)  # the failed PubSub's exit signal
            with pytest.raises(StartError, match="node_name"):
                await PubSub.start_link("chat", adapter="redis", redis=fast(redis_server))
            await PubSub.start_link(
                "chat2", adapter="redis", redis=fast(redis_server), node_name="solo"
            )
            return node_name("chat2")

        assert await node.run(main) == "solo"


def test_bad_options_are_refused_early() -> None:
    for options, error, words in [
        ({"compression_level": 10}, ValueError, "compression_level"),
        ({"node_name": ""}, TypeError, "node_name"),
        ({"max_queue": 0}, ValueError, "max_queue"),
        ({"redis": 5}, TypeError, "Redis options"),
        ({"redis": {"urll": "x"}}, ValueError, "unknown Redis option"),
        ({"channel_prefix": ""}, TypeError, "channel_prefix"),
        ({"bogus": 1}, TypeError, "PubSub 'chat': unknown option 'bogus'; "),
        (
            {"node_nme": "a"},
            TypeError,
            r"PubSub 'chat': unknown option 'node_nme' \(did you mean 'node_name'\?\); "
            r"PubSub takes adapter, pool_size, broadcast_pool_size, id, restart; "
            r"the redis adapter takes redis, node_name, channel_prefix, ",
        ),
    ]:
        with pytest.raises(error, match=words):
            PubSub.child_spec("chat", adapter="redis", **options)


def test_without_the_extra_the_error_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "coredis", None)
    with pytest.raises(ImportError, match=r"pip install beamlet\[redis\]"):
        PubSub.child_spec("chat", adapter="redis")


def test_channel_names() -> None:
    from beamlet.apps.pubsub import AdapterConfig

    adapter = RedisAdapter(AdapterConfig("chat", "chat.Adapter"), channel_prefix="prod")
    assert adapter.channel == "prod:chat"
    assert adapter.node_channel("n1") == "prod:chat:node:n1"


async def test_unexpected_mail_to_the_adapter_process_is_refused(
    redis_server: RedisServer,
) -> None:
    async with chat_nodes(redis_server, "a", "b") as (cluster, inboxes):

        async def mail() -> None:
            send("chat.Adapter", ("what", "is", "this"))

        await cluster.run("a", mail)
        await eventually("refused", lambda: _count_at_least(cluster, "a", "bad_input", 1))
        await cluster.run("a", _broadcast, "fine")
        await inboxes["b"].until(lambda items: items == ["fine"])
