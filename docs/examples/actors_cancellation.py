"""How Trio cancellation and exit signals fit together."""

import trio
from beamlet.actors import Down, open_node, receive, send_exit, spawn_monitor


async def stubborn():
    try:
        while True:
            try:
                await receive()
            except Exception:
                pass  # this does not catch exit signals: they are cancellation
    finally:
        print("cleanup runs, as for any Trio cancellation")


async def uses_trio():
    # Ordinary Trio code works inside a process, cancel scopes included.
    with trio.move_on_after(0.01):
        await receive()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.sleep, 0.01)
    return "done"


async def main(node):
    pid, ref = spawn_monitor(stubborn)
    await trio.sleep(0.01)
    send_exit(pid, "stop")  # arrives as cancellation of the process
    assert await receive() == Down(ref, pid, "stop")
    assert await node.run(uses_trio) == "done"


async def outer():
    async with open_node() as node:
        await node.run(main, node)

        # Cancelling node.run from Trio kills its process with "shutdown".
        with trio.move_on_after(0.01):
            await node.run(trio.sleep_forever)


trio.run(outer)
