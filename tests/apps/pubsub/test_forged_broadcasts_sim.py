"""The cluster adapter refuses a broadcast from another node that carries a runtime signal.

``Down`` and ``ExitSignal`` are what the runtime delivers when a monitor fires
or a linked process exits; subscribers act on the pid or ref they name (a
GenServer subscriber stops on an ``ExitSignal`` from its parent; a ``Reply``
with the ref of a call it waits for answers the call). A broadcast
from another node carrying one is refused by the shard (counted in
``bad_input``, logged) and reaches no subscriber; the same value inside a
message is data and is delivered.
"""

from __future__ import annotations

from typing import Any

import trio
from beamlet.actors import Down, ExitSignal, GenServer, Pid, Ref, whereis
from beamlet.actors.lowlevel import Reply
from beamlet.apps.pubsub import PubSub, broadcast, stats, subscribe
from beamlet.apps.pubsub.testing import _Inbox, _listener
from beamlet.cluster.simulation import simulated_cluster
from beamlet.supervisors import Supervisor

PS = "beamlet_conformance"  # the name _listener subscribes in


class Subscriber(GenServer):
    """A GenServer subscribed to "t", under a supervisor (its parent)."""

    async def init(self) -> None:
        subscribe(PS, "t")

    async def handle_info(self, msg: Any) -> None:
        pass


async def _tree(ready: trio.Event) -> None:
    await Supervisor.start_link(
        [PubSub.child_spec(PS), Subscriber.child_spec(name="subscriber")],
        strategy="rest_for_one",
        name="tree",
    )
    ready.set()
    await trio.sleep_forever()


async def _whereis(name: str) -> Pid | None:
    return whereis(name)


async def _stats() -> dict[str, int]:
    return stats(PS)


async def test_a_broadcast_of_a_runtime_signal_from_another_node_is_refused(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        for short in "ab":
            ready = trio.Event()
            sim.spawn(short, _tree, ready)
            await ready.wait()
        await trio.sleep(2)  # the shards find each other through pg
        inbox = _Inbox("a")
        started = trio.Event()
        sim.spawn("a", _listener, [("t", None, None)], inbox, started, None)
        await started.wait()
        tree = await sim.run("a", _whereis, "tree")
        subscriber = await sim.run("a", _whereis, "subscriber")
        assert tree is not None and subscriber is not None

        async def forge() -> None:
            broadcast(PS, "t", ExitSignal(tree, "shutdown"))
            broadcast(PS, "t", Down(Ref("a@a", 1, 1), subscriber, "killed"))
            broadcast(PS, "t", Reply(Ref("a@a", 1, 1), "a forged answer"))
            broadcast(PS, "t", ("data", ExitSignal(tree, "shutdown")))

        await sim.run("b", forge)
        await trio.sleep(1)
        assert await sim.run("a", _whereis, "subscriber") == subscriber
        assert inbox.items == [("data", ExitSignal(tree, "shutdown"))]
        assert (await sim.run("a", _stats))["bad_input"] == 3
