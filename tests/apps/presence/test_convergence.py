"""Every replica converges to the same list, whatever the network did (stateful property).

Three nodes track, untrack and update presences while their messages are
delivered in any order, duplicated, dropped, cut by partitions and delayed
by pauses, and while nodes crash and restart as new incarnations. Then the
network heals and delivers reliably for a while (the sync phase): every live
node must list exactly the presences that the live processes hold, with the
metas of their last update. All along, each node's diffs must match what it
lists (no duplicate join, no leave of what was not shown; ``presence_sim``).
"""

from __future__ import annotations

from typing import Any

import pytest
from beamlet.actors import Pid
from beamlet.apps.presence._errors import AlreadyTrackedError, NoPresenceError
from beamlet.apps.presence._tracker import TrackerOptions
from hypothesis import settings, strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from presence_sim import SimNet

NAMES = ("n1", "n2", "n3")
TOPICS = ("lobby", "room")
KEYS = ("k1", "k2")
OPTIONS = TrackerOptions(
    broadcast_period=1.0,
    max_silent_periods=2,
    down_period=4.0,
    permdown_period=12.0,
    clock_sample_periods=2,
    max_delta_sizes=(2, 4, 8),  # small, so that every generation level is used
)
SYNC_SECONDS = 30.0

PresenceKey = tuple[str, Pid, str]

names = st.sampled_from(NAMES)
topics = st.sampled_from(TOPICS)
keys = st.sampled_from(KEYS)
slots = st.integers(0, 2)
values = st.integers(0, 9)
requests = st.sampled_from(["track", "track", "untrack", "update", "exit"])
FATES = ("deliver", "deliver", "duplicate", "drop", "wait")
seconds = st.sampled_from([0.25, 0.5, 1.0, 2.0, 5.0])
sides = st.sets(names, min_size=1, max_size=2)
request_lists = st.lists(
    st.tuples(requests, names, topics, keys, slots, values), min_size=1, max_size=6
)
CHAOS = (
    *["requests"] * 3,
    *["time"] * 4,
    *["deliver_one"] * 2,
    "partition",
    "heal",
    "crash",
    "pause",
    "resume",
)


class Convergence(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.net = SimNet(OPTIONS)
        #: node -> the presences its live processes hold: (topic, pid, key) -> meta.
        self.model: dict[str, dict[PresenceKey, dict[str, Any]]] = {}
        self.pids: dict[str, list[Pid]] = {}
        for name in NAMES:
            self._start(name)

    def _start(self, name: str) -> None:
        self.net.start(name)
        self.model[name] = {}
        self.pids[name] = [self.net.pid(name) for _ in range(3)]

    def _alive(self, name: str) -> bool:
        return name in self.net.cores

    @initialize(
        presences=st.lists(st.tuples(names, topics, keys, slots, values), min_size=1, max_size=8)
    )
    def a_live_cluster(self, presences: list[tuple[str, str, str, int, int]]) -> None:
        for name, topic, key, slot, n in presences:
            self._track(name, topic, key, self.pids[name][slot], n)
        self.net.run(4.0)

    # -- local requests ------------------------------------------------------------

    @rule(requests=request_lists)
    def local_requests(self, requests: list[tuple[str, str, str, str, int, int]]) -> None:
        for kind, name, topic, key, slot, n in requests:
            if self._alive(name):
                getattr(self, f"_{kind}")(name, topic, key, self.pids[name][slot], n)

    def _track(self, name: str, topic: str, key: str, pid: Pid, n: int) -> None:
        if (topic, pid, key) in self.model[name]:
            with pytest.raises(AlreadyTrackedError):
                self.net.track(name, pid, topic, key, {"n": n})
            return
        ref = self.net.track(name, pid, topic, key, {"n": n})
        self.model[name][(topic, pid, key)] = {"n": n, "ref": ref}

    def _untrack(self, name: str, topic: str, key: str, pid: Pid, n: int) -> None:
        self.net.untrack(name, pid, topic, key)
        self.model[name].pop((topic, pid, key), None)

    def _update(self, name: str, topic: str, key: str, pid: Pid, n: int) -> None:
        old = self.model[name].get((topic, pid, key))
        if old is None:
            with pytest.raises(NoPresenceError):
                self.net.update(name, pid, topic, key, {"n": n})
            return
        ref = self.net.update(name, pid, topic, key, {"n": n})
        self.model[name][(topic, pid, key)] = {"n": n, "ref": ref, "prev_ref": old["ref"]}

    def _exit(self, name: str, topic: str, key: str, pid: Pid, n: int) -> None:
        self.net.perform(name, self.net.cores[name].untrack_pid(pid))
        self.model[name] = {k: m for k, m in self.model[name].items() if k[1] != pid}

    # -- time and the network ------------------------------------------------------

    @rule(seconds=seconds, data=st.data())
    def time_passes(self, seconds: float, data: st.DataObject) -> None:
        """Heartbeats run; then every queued message meets its fate."""
        self.net.run(seconds, instant=False)
        self._network(data)

    @precondition(lambda self: bool(self.net.deliverable()))
    @rule(data=st.data(), duplicate=st.booleans())
    def deliver_one(self, data: st.DataObject, duplicate: bool) -> None:
        ready = self.net.deliverable()
        index = data.draw(st.sampled_from(ready), label="message")
        self.net.deliver(index, keep=duplicate)

    @precondition(lambda self: bool(self.net.queue))
    @rule(data=st.data())
    def network(self, data: st.DataObject) -> None:
        self._network(data)

    def _network(self, data: st.DataObject) -> None:
        """Every queued message, in a random order: delivered, duplicated, dropped or left."""
        net = self.net
        queued, net.queue = net.queue, []
        order = data.draw(st.permutations(range(len(queued))), label="order")
        fates = data.draw(
            st.lists(st.sampled_from(FATES), min_size=len(queued), max_size=len(queued)),
            label="fates",
        )
        left = []
        for i in order:
            envelope, fate = queued[i], fates[i]
            if fate == "wait" or envelope.dst in net.suspended:
                left.append(envelope)
            elif fate != "drop":
                net.deliver_envelope(envelope)
                if fate == "duplicate":
                    left.append(envelope)
        net.queue[:0] = left

    @rule(data=st.data(), steps=st.integers(5, 25))
    def chaos(self, data: st.DataObject, steps: int) -> None:
        """A burst of anything: requests, time with lossy delivery, splits, crashes, pauses."""
        for _ in range(steps):
            kind = data.draw(st.sampled_from(CHAOS), label="step")
            if kind == "requests":
                self.local_requests(data.draw(request_lists, label="requests"))
            elif kind == "time":
                self.time_passes(data.draw(seconds, label="seconds"), data)
            elif kind == "deliver_one" and self.net.deliverable():
                self.deliver_one(data, data.draw(st.booleans(), label="duplicate"))
            elif kind == "partition":
                self.partition(data.draw(sides, label="side"))
            elif kind == "heal":
                self.heal()
            elif kind == "crash":
                self.crash(
                    data.draw(names, label="node"), data.draw(st.booleans(), label="restart")
                )
            elif kind == "pause":
                self.pause(data.draw(names, label="node"))
            elif kind == "resume":
                self.resume(data.draw(names, label="node"))

    @rule(side=sides)
    def partition(self, side: set[str]) -> None:
        self.net.partition(side, set(NAMES) - side)

    @rule()
    def heal(self) -> None:
        self.net.heal()

    @rule(name=names)
    def pause(self, name: str) -> None:
        if self._alive(name):
            self.net.suspended.add(name)

    @rule(name=names)
    def resume(self, name: str) -> None:
        self.net.suspended.discard(name)

    @rule(name=names, restart=st.booleans())
    def crash(self, name: str, restart: bool) -> None:
        if self._alive(name):
            self.net.kill(name)
            del self.model[name]
        if restart:
            self._start(name)

    @invariant()
    def a_node_always_lists_its_own_presences(self) -> None:
        for name, core in self.net.cores.items():
            own = {
                (e.topic, e.pid, e.key): e.meta
                for e in core.state.online_list()
                if e.replica == core.replica
            }
            assert own == self.model[name]

    def teardown(self) -> None:
        net = self.net
        net.heal()
        net.suspended.clear()
        net.deliver_all()
        net.run(SYNC_SECONDS, instant=True)
        expected = {k: m for presences in self.model.values() for k, m in presences.items()}
        for name, core in net.cores.items():
            listed = {(e.topic, e.pid, e.key): e.meta for e in core.state.online_list()}
            assert listed == expected, f"{name} did not converge"
            for topic in TOPICS:
                by_key: dict[str, list[dict[str, Any]]] = {}
                for (t, _, key), meta in expected.items():
                    if t == topic:
                        by_key.setdefault(key, []).append(meta)
                got = core.state.list_presences(topic)
                assert {k: sorted(m["ref"] for m in ms) for k, ms in got.items()} == {
                    k: sorted(m["ref"] for m in ms) for k, ms in by_key.items()
                }


Convergence.TestCase.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
test_every_replica_converges = Convergence.TestCase


def test_a_lost_delta_is_not_skipped_over() -> None:
    """A delta is lost, and the next one's removed dots fill the gap: no zombie.

    n2's delta ``(1, 2]`` (an update: dot 1 replaced by dot 2, so its cloud
    holds 1) is lost; the next one, ``(2, 3]``, replaces dot 2 by dot 3, so
    its cloud holds 2. Merged as it came, it would take n3's clock to 3 while
    n3 still holds dot 1: its clock equal to everyone's, no transfer would
    ever remove it (the example ``test_every_replica_converges`` found).
    """
    net = SimNet(OPTIONS)
    for name in ("n2", "n3"):
        net.start(name)
    pid = net.pid("n2")
    net.track("n2", pid, "lobby", "k1", {"n": 0})
    net.run(4.0)
    assert net.listed("n3", "lobby") == net.listed("n2", "lobby")
    net.update("n2", pid, "lobby", "k1", {"n": 1})
    net.tick("n2")
    net.queue.clear()  # the update's delta is lost
    net.update("n2", pid, "lobby", "k1", {"n": 2})
    net.tick("n2")
    net.deliver_all()
    net.run(SYNC_SECONDS)
    assert net.cores["n3"].state.clocks() == net.cores["n2"].state.clocks()
    assert net.listed("n3", "lobby") == net.listed("n2", "lobby")
