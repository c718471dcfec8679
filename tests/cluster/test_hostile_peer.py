"""A peer that holds the cookie sends a frame built to cost quadratic time, for real.

The node under attack runs in its own OS process (``node_main.py``). A
legitimate node (this process) is connected to it with a short ``ticktime``;
the attacker is a raw TCP socket that passes the real handshake (it has the
cookie), then sends a 507 KiB frame: a message whose payload is a set of big
integers that all hash alike. Decoded naively, that froze a node for 16 s
and its peers declared it down. Now the node refuses the frame at once:
it closes that connection, logs the protocol error, and keeps answering the
legitimate node, which never sees it go down.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from beamlet.actors import call, receive
from beamlet.cluster import Connection, NodeDown, connect, monitor_nodes, open_node
from beamlet.cluster._auth import Role
from beamlet.cluster._codec import EXT_SET, Codec
from beamlet.cluster._connection import NEED_DATA
from beamlet.cluster._events import Connected
from beamlet.cluster._frames import HEADER
from os_nodes import os_nodes

NODE_MAIN = Path(__file__).with_name("node_main.py")
COOKIE = "hostile-peer-cookie-0123456789abcdef"
VICTIM = "victim@127.0.0.1"
M = 2**61 - 1


def colliding_frame(size: int) -> bytes:
    """A ``SendNamed`` frame to ``"sink"`` whose message is a set of ints that hash alike."""
    codec = Codec()
    head = bytes([0x94, 17, 0xC0]) + codec.encode("sink")  # [17, None, "sink", msg]
    parts: list[bytes] = []
    total = len(head) + 8
    while total < size:
        parts.append(codec.encode((len(parts) + 1) * M))
        total += len(parts[-1])
    count = len(parts)
    items = b"".join(parts)
    body = head + b"\xdd" + (count + 1).to_bytes(4, "big") + b"\xc7\x00" + bytes([EXT_SET]) + items
    return HEADER.pack(len(body)) + body


async def _handshake(stream: trio.SocketStream, conn: Connection) -> None:
    await stream.send_all(conn.initiate())
    with trio.fail_after(10):
        while True:
            event = conn.next_event()
            out = conn.data_to_send()
            if out:
                await stream.send_all(out)
            if isinstance(event, Connected):
                return
            if event is NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))


async def _closed_by_the_node(stream: trio.SocketStream) -> None:
    with trio.fail_after(10):
        while True:
            try:
                if not await stream.receive_some(65536):
                    return
            except trio.BrokenResourceError:
                return


@pytest.mark.timeout(90)
async def test_a_frame_of_keys_that_hash_alike_neither_stalls_nor_downs_the_node(
    tmp_path: Path,
) -> None:
    frame = colliding_frame(507 * 1024)
    assert len(frame) == pytest.approx(507 * 1024, rel=0.01)
    async with os_nodes(tmp_path) as nodes:
        victim = await nodes.start(VICTIM, NODE_MAIN, VICTIM, COOKIE)
        ready = await victim.expect(lambda e: True, timeout=30)  # its first line
        assert ready["event"] == "ready"
        address = ready["address"]
        host, _, port = address.rpartition(":")

        async with open_node("honest@127.0.0.1", cookie=COOKIE, ticktime=2.0) as node:

            async def honest() -> list[float]:
                monitor_nodes(True)
                assert await connect(address)
                assert await call(("ctl", VICTIM), ("whereis", "sink"), timeout=10) is not None
                # The attack: a real handshake, then the frame.
                stream = await trio.open_tcp_stream(host, int(port))
                conn = Connection(
                    Role.INITIATOR, node_name="evil@127.0.0.1", creation=7, cookie=COOKIE
                )
                await _handshake(stream, conn)
                await stream.send_all(frame)
                # The node keeps answering, promptly, for longer than the ticktime.
                latencies = []
                for _ in range(8):
                    started = trio.current_time()
                    await call(("ctl", VICTIM), ("whereis", "sink"), timeout=5)
                    latencies.append(trio.current_time() - started)
                    await trio.sleep(0.5)
                await _closed_by_the_node(stream)
                await stream.aclose()
                with pytest.raises(trio.TooSlowError):
                    down = await receive(lambda m: isinstance(m, NodeDown), timeout=0)
                    raise AssertionError(f"the node was declared down: {down}")
                return latencies

            latencies = await node.run(honest)
        assert max(latencies) < 1.0, latencies
        log = victim.stderr.read_text()
        lines = [line for line in log.splitlines() if "evil@127.0.0.1" in line]
        assert any(
            "WARNING" in line
            and "closing the connection to evil@127.0.0.1" in line
            and "repeat another key's hash, over the limit" in line
            for line in lines
        ), log[-3000:]
        await victim.command(cmd="quit")
        assert await victim.exited() == 0
