"""A small library on beamlet.actors.lowlevel: node-local topics.

Subscribers are kept in a node-local table (a NodeVar) owned by a server
process; each subscription is dropped by an exit hook when its process ends;
publishing reads the table in the caller, without messaging the server.
"""

from beamlet.actors import (
    Down,
    GenServer,
    monitor,
    receive,
    run,
    self_pid,
    send,
    send_exit,
    spawn,
)
from beamlet.actors.lowlevel import NodeVar, add_exit_hook, current_process

# topic -> {subscriber pid: its exit hook}, one table per node.
TOPICS: NodeVar[dict] = NodeVar("example.topics")


class Topics(GenServer):
    """Owns the table: it lives as long as this process."""

    async def init(self):
        TOPICS.set({})


def subscribe(topic):
    """Subscribe the calling process to ``topic`` until it exits."""
    table = TOPICS.get()  # LookupError if Topics is not running here
    me = current_process()
    subscribers = table.setdefault(topic, {})
    if me.pid not in subscribers:

        def drop(pid, reason):  # runs as the subscriber exits
            subscribers.pop(pid, None)

        subscribers[me.pid] = add_exit_hook(me, drop)


def publish(topic, msg):
    """Send ``msg`` to every subscriber of ``topic`` on this node; return how many."""
    subscribers = TOPICS.get().get(topic, {})
    for pid in list(subscribers):
        send(pid, msg)
    return len(subscribers)


async def listener(parent):
    subscribe("news")
    send(parent, "subscribed")
    while True:
        send(parent, ("got", await receive()))


async def main():
    server = await Topics.start()
    a, b = spawn(listener, self_pid()), spawn(listener, self_pid())
    for _ in range(2):
        assert await receive() == "subscribed"

    assert publish("news", "hello") == 2
    assert {await receive(), await receive()} == {("got", "hello")}

    ref = monitor(a)
    send_exit(a, "kill")
    await receive(lambda m: isinstance(m, Down) and m.ref == ref)
    # The exit hook ran before the Down was sent: a is no longer subscribed.
    assert publish("news", "again") == 1
    assert await receive() == ("got", "again")

    ref = monitor(server)
    send_exit(server, "kill")
    await receive(lambda m: isinstance(m, Down) and m.ref == ref)
    # The table went with its owner.
    assert TOPICS.get(default=None) is None
    send_exit(b, "kill")
    return "ok"


if __name__ == "__main__":
    print(run(main))
