"""Registered names: address a process by name; the name goes when it exits."""

from beamlet.actors import (
    NameTakenError,
    NoSuchNameError,
    monitor,
    receive,
    register,
    registered,
    run,
    self_pid,
    send,
    spawn,
    whereis,
)


async def logger_process():
    while True:
        line = await receive()
        if line == "stop":
            return
        print("log:", line)


async def main():
    pid = spawn(logger_process, name="log")  # spawn and register, atomically
    assert whereis("log") == pid
    send("log", "by name")
    send(("log", self_pid().node), "by (name, node)")

    try:
        register("log")  # one process per name ...
    except NameTakenError as exc:
        print("as expected:", exc)
    register("main")
    try:
        register("other")  # ... and one name per process
    except NameTakenError as exc:
        print("as expected:", exc)
    assert sorted(registered()) == ["log", "main"]

    ref = monitor("log")
    send("log", "stop")
    await receive(lambda m: getattr(m, "ref", None) == ref)
    assert whereis("log") is None  # freed before the Down went out

    try:
        send("log", "nobody there")
    except NoSuchNameError as exc:
        print("as expected:", exc)
    send(("log", self_pid().node), "a (name, node) pair never raises")


run(main)
