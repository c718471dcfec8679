"""Calls from several tasks of one process: each task gets its own reply or error."""

import trio
from beamlet.actors import (
    CallTimeoutError,
    GenServer,
    NoReply,
    async_task,
    call,
    receive,
    reply,
    run,
    self_pid,
    send,
    send_after,
)


class Slow(GenServer):
    """Answers ("after", seconds, value) once `seconds` have passed; never answers "never"."""

    async def handle_call(self, request, caller):
        if request == "never":
            return NoReply
        _, seconds, value = request
        send_after(seconds, self_pid(), (caller, value))
        return NoReply

    async def handle_info(self, msg):
        caller, value = msg
        reply(caller, value)


async def square(x):
    await trio.sleep(0.01)
    return x * x


async def main():
    server = await Slow.start()
    results = {}

    async def ask(key, request, timeout):
        try:
            results[key] = await call(server, request, timeout=timeout)
        except CallTimeoutError:
            results[key] = "timed out"

    async def join(key, task):
        results[key] = await task.join()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask, "slow", ("after", 0.03, "slow"), 1.0)
        nursery.start_soon(ask, "fast", ("after", 0.01, "fast"), 1.0)
        nursery.start_soon(ask, "never", "never", 0.02)
        nursery.start_soon(join, "task", async_task(square, 7))

    assert results == {"fast": "fast", "slow": "slow", "never": "timed out", "task": 49}

    # Plain receive stays a single waiter: one task of a process at a time.
    async def second_receiver():
        try:
            await receive()
        except RuntimeError as exc:
            assert "already waiting in receive()" in str(exc)
            send(self_pid(), "done")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive)
        await trio.sleep(0.01)
        nursery.start_soon(second_receiver)


run(main)
