"""A remote flood to a slow consumer, in the simulation: ``max_mailbox`` bounds it.

Node a sends as fast as the connection takes it (retrying when it is busy)
to a consumer on node b that handles a message every 10 ms. Without a bound
b's mailbox grows for as long as the flood lasts (900 MB in a real run);
with ``max_mailbox`` the consumer is killed with ``"mailbox_overflow"`` (a
monitor on a sees it), its supervisor on b restarts it clean, and the
mailbox never holds more than the bound.
"""

from __future__ import annotations

from typing import Any

import trio
from beamlet.actors import Down, GenServer, monitor, receive, send
from beamlet.cluster import DistributionBusyError
from beamlet.cluster.simulation import simulated_cluster
from beamlet.supervisors import Supervisor

BOUND = 1000


class Consumer(GenServer):
    async def handle_info(self, msg: Any) -> None:
        await trio.sleep(0.01)


async def keep_a_supervisor() -> None:
    await Supervisor.start_link(
        [Consumer.child_spec(id="consumer", name="consumer", max_mailbox=BOUND)]
    )
    await trio.sleep_forever()


async def test_a_remote_flood_overflows_a_bounded_consumer_which_restarts(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        sim.spawn("b", keep_a_supervisor)
        b = sim.node("b")
        await sim.wait_until(lambda: b.whereis("consumer") is not None)
        first = b.whereis("consumer")
        longest = 0

        async def watch() -> None:
            nonlocal longest
            while True:
                pid = b.whereis("consumer")
                info = b.process_info(pid) if pid is not None else None
                if info is not None:
                    longest = max(longest, info.message_queue_len)
                await trio.sleep(0.001)

        async def flood() -> tuple[Any, int]:
            """Flood until the consumer is down (then stop, as a sender told so would)."""
            ref = monitor(first)
            sent = 0
            while True:
                try:
                    for _ in range(100):
                        send(("consumer", "b@b"), sent)
                        sent += 1
                except DistributionBusyError:
                    pass  # the connection is full: a moment, then more
                await trio.sleep(0.001)
                try:
                    down = await receive(lambda m: isinstance(m, Down) and m.ref == ref, timeout=0)
                except trio.TooSlowError:
                    continue
                return down, sent

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            down, sent = await sim.run("a", flood)
            nursery.cancel_scope.cancel()
        assert down.reason == "mailbox_overflow"
        assert sent > BOUND and 0 < longest <= BOUND
        await sim.wait_until(lambda: b.whereis("consumer") not in (None, first))
        again = b.whereis("consumer")
        info = b.process_info(again)
        assert info is not None and info.max_mailbox == BOUND
