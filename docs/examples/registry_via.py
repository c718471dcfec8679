"""Processes named via a registry, under supervision (see docs/registry.md)."""

from beamlet.actors import (
    CallExitError,
    Down,
    GenServer,
    Registry,
    call,
    cast,
    monitor,
    receive,
    run,
    send_exit,
    stop,
    whereis,
)
from beamlet.supervisors import DynamicSupervisor, Supervisor


class Room(GenServer):
    """A chat room, one process per room, named by its room id."""

    async def init(self, room_id):
        self.room_id, self.messages = room_id, []

    async def handle_call(self, request, caller):
        return list(self.messages)

    async def handle_cast(self, text):
        self.messages.append(text)


def room(room_id):
    # A name held in the "rooms" registry, not in the node's name table.
    return Registry.via("rooms", room_id)


async def open_room(room_id):
    spec = Room.child_spec(room_id, id=room_id, name=room(room_id), restart="transient")
    return await DynamicSupervisor.start_child("room_sup", spec)


async def main():
    # The registry starts first, then the supervisor of the rooms.
    await Supervisor.start_link(
        [Registry.child_spec("rooms"), DynamicSupervisor.child_spec(name="room_sup")],
        strategy="rest_for_one",
    )
    for room_id in range(1000):
        await open_room(room_id)
    assert Registry.count("rooms") == 1000

    cast(room(42), "hi")  # call, cast, send, stop, monitor and whereis take via names
    assert await call(room(42), "history") == ["hi"]

    # A room that crashes is restarted, and registers its name again.
    first = whereis(room(42))
    ref = monitor(first)
    send_exit(first, "kill")
    await receive(lambda m: isinstance(m, Down) and m.ref == ref)
    # The supervisor heard of the exit before this process did; once it
    # answers a request, it has restarted the room.
    await DynamicSupervisor.count_children("room_sup")
    assert whereis(room(42)) != first
    assert await call(room(42), "history") == []  # a fresh room, under the same name

    await stop(room(7))  # a transient child stopped normally is not restarted
    try:
        await call(room(7), "history")
    except CallExitError as exc:
        print("room 7:", exc.reason)  # noproc, as for an unregistered name
    print("rooms open:", Registry.count("rooms"))


if __name__ == "__main__":
    run(main)
