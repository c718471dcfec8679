"""Links and exit signals: linked processes share their fate, unless they trap exits."""

from beamlet.actors import (
    Down,
    Exit,
    ExitSignal,
    receive,
    run,
    send,
    send_exit,
    spawn_link,
    spawn_monitor,
    trap_exits,
)


async def worker():
    await receive()
    raise ValueError("worker failed")


async def fragile_parent():
    pid = spawn_link(worker)  # linked: the worker's crash takes this process down too
    send(pid, "go")
    await receive()  # never returns


async def careful_parent():
    trap_exits()  # exit signals become ExitSignal messages
    pid = spawn_link(worker)
    send(pid, "go")
    signal = await receive()
    assert isinstance(signal, ExitSignal)
    assert signal.pid == pid
    return signal.reason


async def main():
    # A crash travels along the link; the parent dies with the same reason.
    pid, ref = spawn_monitor(fragile_parent)
    down = await receive()
    assert down.ref == ref and isinstance(down.reason, ValueError)

    # A trapping parent survives and reads the reason.
    reason = await careful_parent()
    assert isinstance(reason, ValueError)

    # A trapping process gets even "normal" as a message; "kill" kills it anyway.
    async def patient():
        while True:
            await receive()

    pid, ref = spawn_monitor(patient, trap_exits=True)
    send_exit(pid, "normal")  # an ExitSignal message in its mailbox
    send_exit(pid, "kill")  # cannot be trapped
    assert await receive() == Down(ref, pid, "killed")

    # A process can end itself with any reason.
    async def quitter():
        raise Exit(("shutdown", "no more work"))

    pid, ref = spawn_monitor(quitter)
    assert await receive() == Down(ref, pid, ("shutdown", "no more work"))


run(main)
