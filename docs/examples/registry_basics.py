"""A unique registry: keys to processes, gone when the process exits (see docs/registry.md)."""

from beamlet.actors import (
    AlreadyRegisteredError,
    Down,
    Registry,
    monitor,
    receive,
    run,
    self_pid,
    send,
    spawn,
)


async def session(user, parent):
    # A process registers keys for itself, with a value.
    Registry.register("sessions", ("user", user), {"since": "09:00"})
    send(parent, "registered")
    await receive()  # until told to stop


async def main():
    await Registry.start_link("sessions", keys="unique")
    me = self_pid()
    alice = spawn(session, "alice", me)
    await receive()  # "registered"

    # Reads run here, in the caller: no message goes to the registry.
    print(Registry.lookup("sessions", ("user", "alice")))  # [(pid, {'since': '09:00'})]
    assert Registry.lookup("sessions", ("user", "bob")) == []
    assert Registry.keys("sessions", alice) == [("user", "alice")]
    assert Registry.values("sessions", ("user", "alice"), alice) == [{"since": "09:00"}]
    assert Registry.count("sessions") == 1

    # A unique key has one holder; the error names it.
    try:
        Registry.register("sessions", ("user", "alice"), {})
    except AlreadyRegisteredError as exc:
        assert exc.pid == alice
        print("as expected:", exc)

    # The caller's own entries: update the value, then let the key go.
    Registry.register("sessions", ("user", "main"), 1)
    assert Registry.update_value("sessions", ("user", "main"), lambda n: n + 1) == (2, 1)
    Registry.unregister("sessions", ("user", "main"))

    # An exiting process takes its entries with it, whatever the reason.
    ref = monitor(alice)
    send(alice, "stop")
    await receive(lambda m: isinstance(m, Down) and m.ref == ref)
    assert Registry.lookup("sessions", ("user", "alice")) == []  # gone before the Down
    assert Registry.count("sessions") == 0


if __name__ == "__main__":
    run(main)
