"""PubSub on one node: the tree, subscriptions, local dispatch, bounds, errors."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from beamlet.actors import (
    Down,
    NotInProcessError,
    Registry,
    monitor,
    open_node,
    receive,
    self_pid,
    send,
    send_exit,
    spawn,
    whereis,
)
from beamlet.apps import pubsub
from beamlet.apps.pubsub import (
    ADAPTERS,
    PubSub,
    UnknownDispatcherError,
    UnknownPubSubError,
    broadcast,
    dispatcher,
    local_broadcast,
    stats,
    subscribe,
    unsubscribe,
)
from beamlet.supervisors import Supervisor


async def _subscriber(parent: Any, topic: str, **opts: Any) -> None:
    subscribe("ps", topic, **opts)
    send(parent, ("subscribed", self_pid()))
    while True:
        msg = await receive()
        send(parent, ("got", self_pid(), msg))


async def _start_subscriber(topic: str, **opts: Any) -> Any:
    pid = spawn(_subscriber, self_pid(), topic, **opts)
    await receive(lambda m: m == ("subscribed", pid))
    return pid


async def test_start_link_builds_a_rest_for_one_tree(autojump_clock: Any) -> None:
    async with open_node() as node:

        async def main() -> None:
            sup = await PubSub.start_link("ps")
            assert whereis("ps.Supervisor") == sup
            children = await Supervisor.which_children(sup)
            assert [c.id for c in children] == ["ps", "adapter"]
            assert [c.type for c in children] == ["worker", "supervisor"]
            # No distribution: local only, and node_name is the node's.
            assert pubsub.node_name("ps") == "nonode@nohost"
            pid = await _start_subscriber("t")
            broadcast("ps", "t", "hi")
            assert await receive() == ("got", pid, "hi")
            # The registry restarts (killed): the adapter restarts after it
            # (rest_for_one), and the subscriber, which lost its subscription,
            # gets the registry's exit signal, as in Elixir.
            ref = monitor(pid)
            send_exit(whereis("ps"), "kill")
            down = await receive(lambda m: isinstance(m, Down) and m.ref == ref)
            assert down.reason == "killed"
            await Supervisor.which_children(sup)
            pid2 = await _start_subscriber("t")
            broadcast("ps", "t", "again")
            assert await receive() == ("got", pid2, "again")

        await node.run(main)


async def test_child_spec_under_a_supervisor_and_bad_options() -> None:
    async with open_node() as node:

        async def main() -> None:
            await Supervisor.start_link([PubSub.child_spec("ps", pool_size=2)])
            assert Registry.count("ps") == 0
            children = await Supervisor.which_children("ps.Adapter")
            ids = [("shard", 0), ("shard", 1), ("flusher", 0), ("flusher", 1)]
            assert [c.id for c in children] == ids  # two shards, a flusher each

        await node.run(main)
    with pytest.raises(ValueError, match="pool_size"):
        PubSub.child_spec("x", pool_size=0)
    with pytest.raises(ValueError, match="broadcast_pool_size"):
        PubSub.child_spec("x", pool_size=2, broadcast_pool_size=3)
    with pytest.raises(TypeError, match="non-empty str"):
        PubSub.child_spec("")
    with pytest.raises(ValueError, match="unknown adapter 'rabbit'"):
        PubSub.child_spec("x", adapter="rabbit")
    with pytest.raises(TypeError, match="adapter must be"):
        PubSub.child_spec("x", adapter=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="PubSub 'x': unknown option 'colour';"):
        PubSub.child_spec("x", colour="blue")  # the cluster adapter takes no such option


async def test_a_misspelt_option_names_the_pubsub_and_what_it_takes() -> None:
    """``pool_sise=3``: the error names the PubSub, the option, and the known ones.

    Not ``ClusterAdapter.__init__() got an unexpected keyword argument``: the
    caller never wrote that class.
    """
    expected = (
        "PubSub 'ps': unknown option 'pool_sise' (did you mean 'pool_size'?); "
        "PubSub takes adapter, pool_size, broadcast_pool_size{}; "
        "the cluster adapter takes no options"
    )
    with pytest.raises(TypeError) as info:
        PubSub.child_spec("ps", pool_sise=3)
    assert str(info.value) == expected.format(", id, restart")
    assert "ClusterAdapter" not in str(info.value)

    async with open_node() as node:

        async def main() -> str:
            with pytest.raises(TypeError) as info:
                await PubSub.start_link("ps", pool_sise=3)
            assert whereis("ps.Supervisor") is None  # nothing started
            return str(info.value)

        assert await node.run(main) == expected.format("")


def test_an_adapter_whose_module_is_missing_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(ADAPTERS, "redis", "beamlet.apps.pubsub._no_such_module:RedisAdapter")
    with pytest.raises(ImportError, match=r"'redis' adapter cannot be loaded.*beamlet\[redis\]"):
        PubSub.child_spec("x", adapter="redis")


async def test_subscriptions_duplicates_unsubscribe_and_exit(autojump_clock: Any) -> None:
    async with open_node() as node:

        async def main() -> None:
            await PubSub.start_link("ps")
            subscribe("ps", "t")
            subscribe("ps", "t", {"meta": 1})
            local_broadcast("ps", "t", "twice")
            assert [await receive(timeout=0), await receive(timeout=0)] == ["twice", "twice"]
            unsubscribe("ps", "t")
            unsubscribe("ps", "t")
            local_broadcast("ps", "t", "none")
            with pytest.raises(trio.TooSlowError):
                await receive(timeout=0)
            pid = await _start_subscriber("t")
            assert stats("ps")["subscriptions"] == 1
            ref = monitor(pid)
            send_exit(pid, "kill")
            await receive(lambda m: isinstance(m, Down) and m.ref == ref)
            assert stats("ps")["subscriptions"] == 0

        await node.run(main)


async def test_the_publisher_delivers_the_very_object_without_encoding() -> None:
    async with open_node() as node:

        async def main() -> None:
            await PubSub.start_link("ps")
            subscribe("ps", "t")
            thing = object()
            local_broadcast("ps", "t", thing)  # no codec: any value
            assert await receive(timeout=0) is thing
            with pytest.raises(TypeError, match="cannot encode"):
                broadcast("ps", "t", thing)  # even alone: the same code works on a cluster
            with pytest.raises(trio.TooSlowError):
                await receive(timeout=0)

        await node.run(main)


async def test_slow_subscriber_bound_drops_and_counts(autojump_clock: Any) -> None:
    async with open_node() as node:

        async def main() -> None:
            await PubSub.start_link("ps")
            subscribe("ps", "t", max_pending=2)
            subscribe("ps", "u")  # unbounded, same process
            for i in range(5):
                broadcast("ps", "t", i)
                broadcast("ps", "u", ("u", i))
            got = []
            while True:
                try:
                    got.append(await receive(timeout=0))
                except trio.TooSlowError:
                    break
            # The bound sees the whole mailbox: 0 and ("u", 0) fill it.
            assert got == [0, ("u", 0), ("u", 1), ("u", 2), ("u", 3), ("u", 4)]
            assert stats("ps")["slow_subscriber_drops"] == 4
            with pytest.raises(ValueError, match="max_pending"):
                subscribe("ps", "t", max_pending=0)
            with pytest.raises(TypeError, match="max_pending"):
                subscribe("ps", "t", max_pending=1.5)  # type: ignore[arg-type]

        await node.run(main)


async def test_bad_input_errors_name_the_problem() -> None:
    async with open_node() as node:

        async def main() -> None:
            await PubSub.start_link("ps")
            with pytest.raises(UnknownPubSubError, match="'nope'") as info:
                broadcast("nope", "t", 1)
            assert info.value.pubsub == "nope"
            await Registry.start_link("plain")  # a registry, not a PubSub
            with pytest.raises(UnknownPubSubError):
                subscribe("plain", "t")
            with pytest.raises(TypeError, match="topic is a str, not int"):
                subscribe("ps", 1)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="topic is a str"):
                broadcast("ps", ("a",), 1)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="named by a str"):
                broadcast(None, "t", 1)  # type: ignore[arg-type]
            with pytest.raises(UnknownDispatcherError, match=r"'no\.such'"):
                local_broadcast("ps", "t", 1, dispatcher="no.such")
            with pytest.raises(TypeError, match="from_pid"):
                pubsub.broadcast_from("ps", "me", "t", 1)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="node name"):
                pubsub.direct_broadcast(7, "ps", "t", 1)  # type: ignore[arg-type]

        await node.run(main)
        with pytest.raises(NotInProcessError):
            subscribe("ps", "t")


async def test_custom_dispatchers_get_metadata_and_from_pid() -> None:
    seen: list[Any] = []

    @dispatcher("tests.pubsub.recorder")
    def recorder(entries: list[Any], from_pid: Any, message: Any) -> None:
        seen.append((entries, from_pid, message))

    def unregistered(entries: list[Any], from_pid: Any, message: Any) -> None:
        seen.append(("local only", message))

    async with open_node() as node:

        async def main() -> None:
            await PubSub.start_link("ps")
            me = self_pid()
            subscribe("ps", "t", "m1")
            subscribe("ps", "t", "m2", max_pending=10)  # the bound stays inside
            broadcast("ps", "t", "x", dispatcher="tests.pubsub.recorder")
            pubsub.broadcast_from("ps", me, "t", "y", recorder)
            local_broadcast("ps", "t", "z", unregistered)  # local: any function
            with pytest.raises(TypeError, match="not registered"):
                broadcast("ps", "t", "w", unregistered)

        await node.run(main)
    pid = seen[0][0][0][0]
    assert seen == [
        ([(pid, "m1"), (pid, "m2")], None, "x"),
        ([(pid, "m1"), (pid, "m2")], pid, "y"),
        ("local only", "z"),
    ]
    with pytest.raises(ValueError, match="already registered"):
        dispatcher("tests.pubsub.recorder")(unregistered)
