"""Several nodes in one Trio program; using beamlet from existing Trio code."""

import trio
from beamlet.actors import open_node, receive, self_pid, send, whereis


async def counter():
    n = 0
    while True:
        match await receive():
            case ("add", k):
                n += k
            case ("get", sender):
                send(sender, n)


async def ask(k):
    send("counter", ("add", k))
    send("counter", ("get", self_pid()))
    return await receive()


async def main():
    async with open_node() as a, open_node() as b:
        a.spawn(counter, name="counter")  # start a process from plain Trio code
        b.spawn(counter, name="counter")
        # node.run runs a function as a process and returns its result.
        assert await a.run(ask, 1) == 1
        assert await a.run(ask, 2) == 3
        assert await b.run(ask, 10) == 10  # b has its own names and processes
        assert a.whereis("counter") != b.whereis("counter")
        # Outside any process, the innermost open_node is the current node.
        assert whereis("counter") == b.whereis("counter")
    # Leaving the block kills the nodes' processes with reason "shutdown".


trio.run(main)
