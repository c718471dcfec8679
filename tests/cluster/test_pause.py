"""A node that was paused (a blocked loop, SIGSTOP, a long GC) for less than the
ticktime must not declare its peers down when it resumes: what they sent during
the pause waits, unread, when its timers fire. Here in the simulation; for real,
with SIGSTOP/SIGCONT of an OS process, in ``test_real_cluster.py``."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from beamlet.actors import receive, self_pid, send
from beamlet.cluster import monitor_nodes
from beamlet.cluster._transport import _NetworkStream
from beamlet.cluster.simulation import simulated_cluster

A, B = "a@a", "b@b"


async def echo() -> None:
    while True:
        sender, msg = await receive()
        send(sender, msg)


async def test_a_blocked_loop_reads_what_waits_before_judging_silence(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each round: a asks b's echo; the moment b's answer lands in a's buffer, the
    loop blocks (the clock jumps) until a's last read from b is more than a
    ticktime old, while b heard from a just before (b's wait stays under it).
    a's ticker and a's reader then wake up together, in either order."""
    ticktime = 8.0
    armed: list[float] = []
    real_send_all = _NetworkStream.send_all

    async def send_all(self: _NetworkStream, data: Any) -> None:
        await real_send_all(self, data)
        if armed and (self._src, self._dst) == ("b", "a"):
            autojump_clock.jump(armed.pop())  # the loop is blocked: nothing runs meanwhile

    monkeypatch.setattr(_NetworkStream, "send_all", send_all)
    async with simulated_cluster(["a", "b"], ticktime=ticktime) as sim:
        pid = sim.spawn("b", echo)
        peer = sim.distribution("a").peers[B]
        downs: list[Any] = []

        async def watch() -> None:
            monitor_nodes(True)
            downs.append(await receive())

        sim.spawn("a", watch)
        sim.spawn("b", watch)

        async def ask(msg: Any) -> Any:
            send(pid, (self_pid(), msg))
            return await receive(timeout=ticktime)

        for round_ in range(16):
            # Wait for a quiet moment: a last heard from b at least half a second ago.
            while trio.current_time() - peer.ticks.last_received < 0.5:  # noqa: ASYNC110
                await trio.sleep(0.1)
            silent = trio.current_time() - peer.ticks.last_received
            armed.append(ticktime + 0.1 - silent)  # then a's silence is ticktime + 0.1
            assert await sim.run("a", ask, round_) == round_
            assert not armed
            assert downs == [] and sim.nodes("a") == [B] and sim.nodes("b") == [A]
        assert peer is sim.distribution("a").peers[B]  # the same connection throughout
