"""A process killed for a mailbox overflow is restarted clean by its supervisor."""

from __future__ import annotations

from typing import Any

import trio
from beamlet.actors import Down, GenServer, Node, call, monitor, process_info, receive, send
from beamlet.supervisors import Supervisor


class Worker(GenServer):
    """Reads its messages slowly; answers ``"ping"``."""

    async def handle_call(self, request: Any, caller: Any) -> Any:
        return "pong"

    async def handle_info(self, msg: Any) -> None:
        await trio.sleep(10)


async def test_the_supervisor_restarts_an_overflowed_worker_with_its_bound(node: Node) -> None:
    async def body() -> None:
        sup = await Supervisor.start_link([Worker.child_spec(id="worker", max_mailbox=100)])
        [child] = await Supervisor.which_children(sup)
        first = child.pid
        assert first is not None
        ref = monitor(first)
        for i in range(500):
            send(first, i)
        down = await receive(lambda m: isinstance(m, Down) and m.ref == ref, timeout=5)
        assert down.reason == "mailbox_overflow"
        with trio.fail_after(5):
            while True:
                [child] = await Supervisor.which_children(sup)
                if child.pid not in (None, first):
                    break
                await trio.sleep(0.01)
        info = process_info(child.pid)
        assert info is not None
        assert info.max_mailbox == 100 and info.message_queue_len == 0
        assert await call(child.pid, "ping", timeout=5) == "pong"

    await node.run(body)
