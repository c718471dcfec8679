"""Children started on demand, and tasks under supervision (see docs/supervision.md)."""

import trio
from beamlet.actors import (
    Exit,
    ExitSignal,
    TaskExitError,
    receive,
    run,
    self_pid,
    send,
    trap_exits,
)
from beamlet.supervisors import DynamicSupervisor, SupervisorError, TaskSupervisor, worker


async def session(user):
    """One process per connected user; it echoes what it is sent."""
    trap_exits(True)  # so that it can say goodbye when the supervisor stops it
    while True:
        msg = await receive()
        if isinstance(msg, ExitSignal):  # the supervisor asks it to stop
            await trio.sleep(0.5)  # tidy up for half a second
            print(f"  session {user} closed")
            raise Exit(msg.reason)  # exit with the reason it was given: "shutdown"
        sender, text = msg
        send(sender, (user, text))


async def fetch(url):
    if "broken" in url:
        raise ConnectionError(url)
    return f"<html>{url}</html>"


async def main():
    sessions = await DynamicSupervisor.start_link(max_children=3, name="sessions")
    alice = await DynamicSupervisor.start_child("sessions", worker(session, "alice"))
    await DynamicSupervisor.start_child("sessions", worker(session, "bob"))
    await DynamicSupervisor.start_child("sessions", worker(session, "carol"))
    try:
        await DynamicSupervisor.start_child("sessions", worker(session, "dave"))
    except SupervisorError as exc:
        print("dave refused:", exc.reason)

    send(alice, (self_pid(), "hi"))
    print("alice says:", await receive())
    print("sessions:", (await DynamicSupervisor.count_children("sessions")).active)

    tasks = await TaskSupervisor.start_link(name="tasks")
    good = await TaskSupervisor.async_nolink("tasks", fetch, "example.org")
    bad = await TaskSupervisor.async_nolink("tasks", fetch, "broken.example")
    print("fetched:", await good.join())
    try:
        await bad.join()
    except TaskExitError as exc:
        print("failed:", repr(exc.reason))

    # Stopping a dynamic supervisor stops its children all at once: about half
    # a second here, not three halves.
    started = trio.current_time()
    await DynamicSupervisor.stop(sessions)
    print(f"sessions stopped in {trio.current_time() - started:.1f} s")
    await DynamicSupervisor.stop(tasks)


if __name__ == "__main__":
    run(main)
