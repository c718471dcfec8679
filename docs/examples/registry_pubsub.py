"""A duplicate registry as a PubSub: dispatch runs in the publisher (see docs/registry.md)."""

from beamlet.actors import (
    Down,
    Registered,
    Registry,
    monitor,
    receive,
    run,
    self_pid,
    send,
    spawn,
)


async def subscriber(name, topic, style, parent):
    # Several processes may register the same key; the value is per entry.
    Registry.register("pubsub", topic, style)
    send(parent, "subscribed")
    while True:
        msg = await receive()
        if msg == "stop":
            return
        send(parent, (name, msg))


def publish(topic, text):
    """Send ``text`` to every subscriber of ``topic``, each in its own style."""

    def deliver(entries):  # called once, here, with [(pid, value), ...]
        for pid, style in entries:
            send(pid, text.upper() if style == "loud" else text)

    Registry.dispatch("pubsub", topic, deliver)


async def main():
    me = self_pid()
    await Registry.start_link("pubsub", keys="duplicate", listeners=[me])
    for name, style in [("ann", "quiet"), ("bo", "loud"), ("cy", "quiet")]:
        spawn(subscriber, name, "news", style, me)
    for _ in range(3):
        await receive(lambda m: m == "subscribed")
    # The listener (here, this process) heard of each registration.
    heard = [await receive(lambda m: isinstance(m, Registered)) for _ in range(3)]
    assert {m.value for m in heard} == {"quiet", "loud"}

    publish("news", "hello")
    got = sorted([await receive() for _ in range(3)])
    print(got)  # [('ann', 'hello'), ('bo', 'HELLO'), ('cy', 'hello')]

    # Queries with a predicate on the value, where Elixir has match specs.
    loud = Registry.match("pubsub", "news", lambda style: style == "loud")
    assert len(loud) == 1
    assert Registry.count_match("pubsub", "news", lambda style: style == "quiet") == 2
    print(Registry.select("pubsub", lambda key, pid, style: style == "loud"))

    # A subscriber that exits is no longer dispatched to.
    ref = monitor(loud[0][0])
    send(loud[0][0], "stop")
    await receive(lambda m: isinstance(m, Down) and m.ref == ref)
    publish("news", "again")
    print(sorted([await receive(), await receive()]))  # [('ann', 'again'), ('cy', 'again')]
    publish("nobody-listens", "lost")  # no entries: the function is not called


if __name__ == "__main__":
    run(main)
