"""Two nodes in one program, over real loopback TCP: send by name, monitor across nodes."""

import logging

import trio
from beamlet.actors import Down, monitor, receive, self_pid, send
from beamlet.cluster import connect, distribution, nodes, open_node

COOKIE = "example-cookie-change-me-0123456789"


async def greeter() -> None:
    while True:
        msg = await receive()
        if msg == "crash":
            raise RuntimeError("asked to crash")
        sender, name = msg
        send(sender, f"hello, {name}")


async def main() -> None:
    logging.getLogger("beamlet").setLevel(logging.CRITICAL)  # the crash report is expected
    async with open_node("b@127.0.0.1", cookie=COOKIE) as b:
        b.spawn(greeter, name="greeter")
        address = distribution(b).listen_address
        assert address is not None

        async with open_node("a@127.0.0.1", cookie=COOKIE) as a:

            async def client() -> tuple[str, object]:
                assert await connect(address)  # by "host:port"; names spread by gossip
                print("a is connected to", nodes())
                send(("greeter", "b@127.0.0.1"), (self_pid(), "a"))
                greeting = await receive(timeout=5)

                # Signals from one process to another arrive in order, across
                # nodes too: the monitor is in place before "crash" arrives.
                ref = monitor(("greeter", "b@127.0.0.1"))
                send(("greeter", "b@127.0.0.1"), "crash")
                down = await receive(lambda m: isinstance(m, Down) and m.ref == ref, timeout=5)
                return greeting, (down.pid, down.reason)

            greeting, down = await a.run(client)
            print(greeting)
            print("Down:", down)


trio.run(main)
