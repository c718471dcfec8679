"""A TCP connection's reader yields (so that the processes it woke answer
first) before it records the time of a read; the ticker must count that read."""

from __future__ import annotations

from types import SimpleNamespace

import trio
import trio.testing
from beamlet.cluster._peer import Peer


def make_peer(ticktime: float) -> Peer:
    dist = SimpleNamespace(
        hidden=False,
        ticktime=ticktime,
        busy_limit=1 << 20,
        node=SimpleNamespace(
            remote_send=lambda pid, msg: None, remote_reply=lambda origin, pid, msg: True
        ),
        dispatch=lambda peer, event: None,
    )
    conn = SimpleNamespace(peer_flags=0)
    session = SimpleNamespace(
        conn=conn, encode_message=lambda pid, msg: b"", encode=lambda event: b"tick"
    )
    stream = trio.testing.MemorySendStream()
    return Peer(dist, session, stream, "b@h", 1, True)  # type: ignore[arg-type]


async def test_a_read_not_yet_recorded_keeps_the_peer_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    peer = make_peer(ticktime=4.0)
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer._ticker)
        await trio.sleep(3.9)
        peer._unrecorded = True  # bytes came in; the reader yields before recording them
        await trio.sleep(0.2)  # past the ticktime since the last recorded read
        assert not peer.closing
        assert peer.ticks.last_received == start + 4.0  # counted when the ticker ran
        peer._unrecorded = False
        await trio.sleep(4.1)  # then silence for a whole ticktime
        assert peer.closing and peer.close_reason == "net_tick_timeout"
        nursery.cancel_scope.cancel()
