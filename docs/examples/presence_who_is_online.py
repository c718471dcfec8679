"""Who is online, on two nodes, through a node crash.

Each node runs a PubSub and a presence (one supervision tree). Alice is
connected to node a, Bob to node b: both nodes list both. Then node b
crashes: node a keeps Alice, and Bob leaves once b has been silent for
``down_period``. A watcher on node a prints every PresenceDiff as it comes.

It runs in the cluster simulation, in virtual time (the MockClock jumps
over the waits), so the times printed are exact.
"""

import trio
import trio.testing
from beamlet.actors import receive, self_pid
from beamlet.apps.presence import Presence, PresenceDiff, list_presences, track
from beamlet.apps.pubsub import PubSub, subscribe
from beamlet.cluster.simulation import simulated_cluster
from beamlet.supervisors import Supervisor

USERS = {"u1": "Alice", "u2": "Bob"}  # a stand-in for a users table


def fetch(topic, presences):
    """Called once per list (and per diff): one lookup for all the keys, not one each."""
    return {key: {"name": USERS[key], "metas": metas} for key, metas in presences.items()}


async def node_main():
    await Supervisor.start_link(
        [
            PubSub.child_spec("chat"),
            Presence.child_spec("online", pubsub="chat", fetch=fetch),
        ],
        strategy="rest_for_one",
    )
    await trio.sleep_forever()


async def connection(user_id, device):
    """A user's connection: tracked as long as this process lives."""
    await track("online", self_pid(), "room:lobby", user_id, {"device": device})
    await trio.sleep_forever()


async def watcher():
    subscribe("chat", "room:lobby")
    while True:
        diff = await receive(lambda m: isinstance(m, PresenceDiff))
        joined = [p["name"] for p in diff.joins.values()]
        left = [p["name"] for p in diff.leaves.values()]
        print(f"t={trio.current_time():5.2f}  joined {joined}  left {left}")


async def who_is_online():
    return sorted(p["name"] for p in list_presences("online", "room:lobby").values())


async def main():
    async with simulated_cluster(["a", "b"]) as sim:
        for node in "ab":
            sim.spawn(node, node_main)
        await trio.sleep(0.1)
        sim.spawn("a", watcher)
        sim.spawn("a", connection, "u1", "phone")
        sim.spawn("b", connection, "u2", "laptop")

        await trio.sleep(3)  # two heartbeats (every 1.5 s)
        assert await sim.run("a", who_is_online) == ["Alice", "Bob"]
        assert await sim.run("b", who_is_online) == ["Alice", "Bob"]
        print("both nodes list", await sim.run("a", who_is_online))

        crashed_at = trio.current_time()
        sim.crash("b")
        print(f"t={crashed_at:5.2f}  node b crashed")
        await trio.sleep(30)  # down_period
        assert await sim.run("a", who_is_online) == ["Alice"]
        print("node a lists", await sim.run("a", who_is_online))


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
