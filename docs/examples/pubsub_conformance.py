"""The conformance suite of PubSub adapters, on the cluster adapter in the simulation.

(docs/pubsub.md) Pass your own adapter's class as ``adapter=``; in a test,
use the ``autojump_clock`` fixture instead of ``trio.run``'s ``clock``.
"""

import trio
import trio.testing
from beamlet.apps.pubsub.testing import CHECKS, Partition, check_pubsub_adapter
from beamlet.cluster.simulation import simulated_cluster


async def main():
    # A short net tick: a partition is noticed within seconds of virtual time.
    async with simulated_cluster(["a", "b", "c"], ticktime=4.0) as sim:
        await check_pubsub_adapter(
            sim, ["a", "b", "c"], adapter="cluster", outage=Partition(sim), pool_size=2
        )
    print("the cluster adapter passes:", ", ".join(CHECKS))


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
