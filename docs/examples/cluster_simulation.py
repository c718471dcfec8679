"""A simulated three-node cluster in virtual time: partition, tick timeout, heal."""

import trio
import trio.testing
from beamlet.actors import ExitSignal, link, receive, trap_exits
from beamlet.cluster import NodeDown, NodeUp, monitor_nodes
from beamlet.cluster.simulation import simulated_cluster


async def main() -> None:
    async with simulated_cluster(["a", "b", "c"], ticktime=4.0) as sim:
        print("a sees", sim.nodes("a"))

        async def watch() -> list[object]:
            monitor_nodes(True)
            events = []
            start = trio.current_time()
            sim.partition({"a"}, {"b", "c"})
            while len(events) < 2:
                msg = await receive()
                if isinstance(msg, NodeDown):
                    events.append((msg.node, msg.reason, trio.current_time() - start))
            sim.heal()
            while len(events) < 4:
                msg = await receive()
                if isinstance(msg, NodeUp):
                    events.append((msg.node, "up again"))
            return events

        for event in await sim.run("a", watch):
            print(event)

        async def linked_across() -> object:
            trap_exits(True)

            async def far_away() -> None:
                await trio.sleep_forever()

            pid = sim.spawn("b", far_away)  # a process on node b
            link(pid)
            sim.crash("b")
            msg = await receive(lambda m: isinstance(m, ExitSignal))
            return msg.reason

        print("link to a crashed node:", await sim.run("a", linked_across))


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
