"""A supervision tree for ``beamlet run`` tests, with processes ``beamlet top`` can tell apart.

``children`` (a list) and ``make_children`` (a function returning one) run:

- ``greeter``: a GenServer answering ``call(("greeter", node), "you")`` with ``"hello you"``;
  it traps exits and prints ``terminate greeter <reason>`` to stdout when it stops;
- ``backlog``: a process with 7 messages it never takes (the largest mailbox);
- ``chatty``: a process that calls ``receive`` 300 times, then waits (the most reductions).
"""

from __future__ import annotations

from typing import Any

from beamlet.actors import GenServer, receive, self_pid, send, trap_exits
from beamlet.supervisors import worker


class Greeter(GenServer):
    async def init(self) -> None:
        trap_exits(True)

    async def handle_call(self, request: Any, caller: Any) -> Any:
        return f"hello {request}"

    async def terminate(self, reason: Any) -> None:
        print(f"terminate greeter {reason}", flush=True)


async def backlog() -> None:
    for i in range(7):
        send(self_pid(), ("queued", i))
    await receive(lambda m: m == "never")


async def chatty() -> None:
    for i in range(300):
        send(self_pid(), i)
        await receive()
    await receive(lambda m: m == "never")


def make_children() -> list[Any]:
    return [
        Greeter.child_spec(name="greeter", id="greeter"),
        worker(backlog, id="backlog", name="backlog"),
        worker(chatty, id="chatty", name="chatty"),
    ]


children = make_children()


class Broken(GenServer):
    async def init(self) -> None:
        raise RuntimeError("no database")


broken = [Broken.child_spec(id="broken")]
