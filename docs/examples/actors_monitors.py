"""Monitors: be told when a process exits, without sharing its fate."""

from beamlet.actors import (
    Down,
    ReceiveTimeoutError,
    demonitor,
    monitor,
    receive,
    run,
    self_pid,
    send,
    spawn,
)


async def short_job():
    await receive()
    raise RuntimeError("job failed")


async def main():
    pid = spawn(short_job)
    ref = monitor(pid)
    send(pid, "go")
    down = await receive()
    assert isinstance(down, Down) and down.ref == ref and down.pid == pid
    assert isinstance(down.reason, RuntimeError)  # and we are still alive

    # A target that does not exist gives an immediate Down with "noproc".
    ref = monitor(pid)
    assert await receive(timeout=0) == Down(ref, pid, "noproc")
    ref = monitor("nobody")
    assert await receive(timeout=0) == Down(ref, ("nobody", self_pid().node), "noproc")

    # demonitor(ref, flush=True) also removes a Down that is already queued.
    pid = spawn(short_job)
    ref = monitor(pid)
    other = monitor(pid)
    send(pid, "go")
    await receive(lambda m: isinstance(m, Down) and m.ref == other)  # both are queued now
    demonitor(ref, flush=True)
    try:
        await receive(timeout=0)
    except ReceiveTimeoutError:
        pass  # nothing left


run(main)
