"""Floods, in the simulation: a peer that holds the cookie sends gossip of 40,960
made-up nodes; a stranger fails a thousand handshakes. The node keeps a bounded
address book, dials at a bounded rate with a bounded number under way, forgets
the addresses that never answer, logs one line and then a count, and keeps serving."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing
from beamlet.actors import receive, self_pid, send
from beamlet.cluster import Connection
from beamlet.cluster._auth import Role
from beamlet.cluster._connection import NEED_DATA
from beamlet.cluster._errors import RemoteProtocolError
from beamlet.cluster._events import Connected, NodesGossip, Refused
from beamlet.cluster._limits import (
    DIAL_BURST,
    DIAL_RATE,
    FAILURE_LOG_PERIOD,
    MAX_BACKGROUND_DIALS,
    MAX_KNOWN_NODES,
)
from beamlet.cluster._transport import MemoryTransport
from beamlet.cluster.simulation import SIMULATION_COOKIE, simulated_cluster

A, B = "a@a", "b@b"
FRAMES, PER_FRAME = 10, 4096


async def rogue_peer(
    transport: MemoryTransport, address: str, cookie: str = SIMULATION_COOKIE
) -> tuple[Connection, Any]:
    """Connect to ``address`` as node ``rogue@rogue`` with ``cookie``; return at
    ``Connected`` or when refused."""
    stream = await transport.connect(address)
    conn = Connection(Role.INITIATOR, node_name="rogue@rogue", creation=1, cookie=cookie)
    await stream.send_all(conn.initiate())
    while True:
        event = conn.next_event()
        out = conn.data_to_send()
        if out:
            await stream.send_all(out)
        if event is NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        elif isinstance(event, Connected | Refused):
            return conn, stream


async def echo() -> None:
    while True:
        sender, msg = await receive()
        send(sender, msg)


@pytest.mark.timeout(120)
async def test_a_gossip_flood_is_bounded_and_forgotten(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    dials: list[float] = []
    under_way = [0, 0]  # now, most ever
    real_connect = MemoryTransport.connect

    async def connect(self: MemoryTransport, address: str, peer_host: str | None = None) -> Any:
        if not address.startswith("fake"):
            return await real_connect(self, address, peer_host)
        dials.append(trio.current_time())
        under_way[0] += 1
        under_way[1] = max(under_way)
        try:
            await trio.sleep(0.5)  # a host that does not answer, then refuses
            raise OSError(f"connection to {address} refused")
        finally:
            under_way[0] -= 1

    monkeypatch.setattr(MemoryTransport, "connect", connect)
    async with simulated_cluster(["a", "b"]) as sim:
        dist = sim.distribution("a")
        pid = sim.spawn("a", echo)
        conn, stream = await rogue_peer(sim.network.transport("rogue"), sim.address("a"))
        await sim.wait_until(lambda: "rogue@rogue" in dist.peers)
        start = trio.current_time()
        for frame in range(FRAMES):
            entries = tuple(
                (f"n{frame}x{i}@fake{frame}x{i}", f"fake{frame}x{i}:4370") for i in range(PER_FRAME)
            )
            await stream.send_all(conn.send(NodesGossip(entries)))
            await trio.sleep(0.01)
            assert len(dist.addresses) <= MAX_KNOWN_NODES
            assert len(dist.membership.pending) <= MAX_KNOWN_NODES

        async def ping() -> Any:
            send(pid, (self_pid(), "still here"))
            return await receive(timeout=1)

        assert await sim.run("b", ping) == "still here"  # a legitimate call, served
        await trio.sleep(30)
        elapsed = trio.current_time() - start
        assert 0 < len(dials) <= DIAL_BURST + DIAL_RATE * elapsed
        assert under_way[1] <= MAX_BACKGROUND_DIALS
        # Every made-up address is dialled once at most, then forgotten.
        await sim.wait_until(lambda: not dist.membership.pending, timeout=600)
        await sim.wait_until(lambda: under_way[0] == 0, timeout=10)
        assert set(dist.addresses) <= {B, "rogue@rogue"}
        assert len(dials) <= MAX_KNOWN_NODES + DIAL_BURST
        assert B in sim.nodes("a")  # the rogue, silent, was declared down meanwhile


async def test_failed_handshakes_are_logged_once_then_counted(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="beamlet.cluster")
    async with simulated_cluster(["a"]) as sim:
        transport = sim.network.transport("rogue")
        for _ in range(1000):
            try:
                _conn, stream = await rogue_peer(
                    transport, sim.address("a"), cookie="not-the-cookie-0123456789abcdef"
                )
            except RemoteProtocolError:  # refused: a bad cookie
                continue
            finally:
                await stream.aclose()
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "refused an incoming connection from rogue" in warnings[0]
        assert "proof does not match" in warnings[0]
        await trio.sleep(FAILURE_LOG_PERIOD + 1)  # the count comes once a period
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 2
        assert warnings[1] == "999 more failed incoming handshakes from rogue in the last 60 s"
        await trio.sleep(2 * FAILURE_LOG_PERIOD)  # nothing more to say
        assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 2
