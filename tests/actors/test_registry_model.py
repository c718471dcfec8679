"""Property: a Registry used by real processes agrees with a model, whatever the exits.

A driver process plays a random script against a few actor processes: each
actor registers, unregisters, updates and unregisters by predicate when told
to, and exits in every way a process can (returns, crashes, raises ``Exit``,
is killed, gets an exit signal, is killed while it registers, is killed with
orders still in its mailbox). After every step the registry's reads must be
those of a model, a list of ``(key, pid, value)`` in registration order, from
which a process's entries go exactly when it exits.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import trio.lowlevel
from beamlet.actors import (
    AlreadyRegisteredError,
    Down,
    Exit,
    Pid,
    Registry,
    receive,
    run,
    self_pid,
    send,
    send_exit,
    spawn_monitor,
)
from hypothesis import given, settings, strategies as st

REG = "reg"
# Few keys and actors, so that they meet often.
KEYS = ["a", ("c", 1)]
SLOTS = 2


async def actor(driver: Pid) -> None:
    me = self_pid()
    while True:
        order = await receive()
        kind = order[0]
        result: Any = None
        if kind == "register":
            try:
                Registry.register(REG, order[1], order[2])
            except AlreadyRegisteredError as exc:
                result = ("taken", exc.pid)
        elif kind == "unregister":
            Registry.unregister(REG, order[1])
        elif kind == "update":
            delta = order[2]
            result = Registry.update_value(REG, order[1], lambda v, d=delta: v + d)
        elif kind == "unregister_match":
            threshold = order[2]
            Registry.unregister_match(REG, order[1], lambda v, t=threshold: v >= t)
        elif kind == "register_exiting":
            send_exit(me, "kill")  # decided now; the process ends at its next checkpoint
            try:
                Registry.register(REG, order[1], order[2])
            except AlreadyRegisteredError:
                pass
            send(driver, ("reply", me, "registered while exiting"))
            continue  # the receive is the checkpoint where it ends
        elif kind == "return":
            return
        elif kind == "crash":
            raise RuntimeError("crash on purpose")
        elif kind == "raise_exit":
            raise Exit("bye")
        send(driver, ("reply", me, result))


keys = st.sampled_from(KEYS)
small = st.integers(0, 3)
writes = st.one_of(
    st.tuples(st.just("register"), keys, small),
    st.tuples(st.just("unregister"), keys),
    st.tuples(st.just("update"), keys, small),
    st.tuples(st.just("unregister_match"), keys, small),
)
exits = st.one_of(
    st.tuples(st.sampled_from(["return", "crash", "raise_exit", "kill", "signal"])),
    st.tuples(st.just("register_exiting"), keys, small),
    # Orders sent, then killed before or after it carried them out (after 0, 1
    # or 2 turns of the scheduler).
    st.tuples(
        st.just("killed_with_orders"), st.lists(writes, min_size=1, max_size=3), st.integers(0, 2)
    ),
)
# One step in five is an exit, so that an actor lives long enough to hold a few keys.
orders = st.integers(0, 4).flatmap(lambda n: exits if n == 0 else writes)
steps = st.lists(st.tuples(st.integers(0, SLOTS - 1), orders), min_size=3, max_size=40)


class Model:
    def __init__(self, unique: bool) -> None:
        self.unique = unique
        self.entries: list[tuple[Any, Pid, Any]] = []

    def write(self, pid: Pid, order: tuple[Any, ...]) -> Any:
        """Apply an order of ``pid``; return what the actor must reply."""
        kind, key = order[0], order[1]
        mine = [e for e in self.entries if e[0] == key and e[1] == pid]
        if kind == "register":
            holders = [e[1] for e in self.entries if e[0] == key]
            if self.unique and holders:
                return ("taken", holders[0])
            self.entries.append((key, pid, order[2]))
            return None
        if kind == "unregister":
            self.entries = [e for e in self.entries if e not in mine]
            return None
        if kind == "update":
            if not self.unique:
                raise AssertionError("update_value is only played on unique registries")
            if not mine:
                return None
            [(k, p, old)] = mine
            self.entries[self.entries.index(mine[0])] = (k, p, old + order[2])
            return (old + order[2], old)
        if kind == "unregister_match":
            for entry in [e for e in mine if e[2] >= order[2]]:
                self.entries.remove(entry)
            return None
        raise AssertionError(order)

    def exited(self, pid: Pid) -> None:
        self.entries = [e for e in self.entries if e[1] != pid]


def check(model: Model, live: list[Pid]) -> None:
    entries = model.entries
    for key in KEYS:
        assert Registry.lookup(REG, key) == [(p, v) for k, p, v in entries if k == key]
    assert Registry.count(REG) == len(entries)
    assert Counter(Registry.select(REG)) == Counter(entries)
    for pid in live:
        assert Counter(Registry.keys(REG, pid)) == Counter(k for k, p, _ in entries if p == pid)


async def drive(unique: bool, script: list[tuple[int, tuple[Any, ...]]]) -> None:
    me = self_pid()
    await Registry.start_link(REG, keys="unique" if unique else "duplicate")
    model = Model(unique)
    slots: list[tuple[Pid, Any] | None] = [None] * SLOTS

    async def down(ref: Any) -> None:
        await receive(lambda m: type(m) is Down and m.ref == ref)

    async def reply(pid: Pid) -> Any:
        msg = await receive(lambda m: type(m) is tuple and m[0] == "reply" and m[1] == pid)
        return msg[2]

    for slot, order in script:
        if slots[slot] is None:
            slots[slot] = spawn_monitor(actor, me)
        pid, ref = slots[slot]  # type: ignore[misc]
        kind = order[0]
        if kind == "update" and not unique:
            kind, order = "unregister", ("unregister", order[1])
        if kind in ("register", "unregister", "update", "unregister_match"):
            send(pid, order)
            assert await reply(pid) == model.write(pid, order)
        else:
            if kind == "kill":
                send_exit(pid, "kill")
            elif kind == "signal":
                send_exit(pid, "shutdown")
            elif kind == "killed_with_orders":
                for write in order[1]:
                    send(pid, write)
                for _ in range(order[2]):
                    await trio.lowlevel.checkpoint()
                send_exit(pid, "kill")
            else:
                send(pid, order)
                if kind == "register_exiting":
                    await reply(pid)
            await down(ref)
            model.exited(pid)
            slots[slot] = None
        check(model, [s[0] for s in slots if s is not None])
    # In the end every actor exits, and nothing is left.
    for held in slots:
        if held is not None:
            send_exit(held[0], "kill")
            await down(held[1])
            model.exited(held[0])
    assert model.entries == []
    check(model, [])


@settings(max_examples=120)
@given(unique=st.booleans(), script=steps)
def test_the_registry_agrees_with_the_model_under_writes_and_exits(
    unique: bool, script: list[tuple[int, tuple[Any, ...]]]
) -> None:
    run(drive, unique, script, watchdog_threshold=None)
