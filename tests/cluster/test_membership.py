"""The membership and arbitration core, alone: decisions as values, and a model of two
nodes whose connection attempts, handshakes, failures and downs interleave at random."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from beamlet.cluster._membership import (
    Cancel,
    Close,
    Dial,
    Down,
    Fail,
    Flush,
    Gossip,
    Handshake,
    Membership,
    Up,
)
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

A, B = "a@h", "b@h"
ADDRESS = {A: "h:1", B: "h:2"}
CREATION = {A: 11, B: 22}


@attrs.define(eq=False)
class FakePeer:
    name: str
    hidden: bool = False
    address: str | None = None
    initiated: bool = False
    creation: int = 0


def core(name: str = A, **options: Any) -> Membership[FakePeer]:
    membership: Membership[FakePeer] = Membership(name, **options)
    membership.listen_address = ADDRESS.get(name)
    return membership


# -- decisions -----------------------------------------------------------------------------


def test_a_named_dial_claims_the_node_once() -> None:
    m = core()
    m.remember(B, "h:2")
    m.request(B, "h:2")
    [dial] = m.take()
    assert isinstance(dial, Dial) and dial.name == B and dial.address == "h:2"
    assert dial.handshake is m.handshakes[B] and dial.handshake.initiated
    m.request(B, "h:2")  # the handshake under way will do
    assert m.take() == [] and B in m.waiting


@pytest.mark.parametrize(
    ("ours", "theirs", "kept"),
    [
        # the connection dialled by the node whose name sorts first is kept on both sides
        (A, B, "ours"),
        (B, A, "theirs"),
    ],
)
def test_crossing_dials_keep_the_one_dialled_by_the_first_name(
    ours: str, theirs: str, kept: str
) -> None:
    m = core(ours)
    m.request(theirs, "h:9")
    [dial] = m.take()
    handle = m.accepted(theirs, 0)  # their dial authenticated while ours goes on
    if kept == "ours":
        assert handle is None and m.handshakes[theirs] is dial.handshake
        assert m.take() == []
    else:
        assert handle is not None and m.handshakes[theirs] is handle
        assert [type(e) for e in m.take()] == [Cancel]


def test_a_committed_dial_is_never_cancelled() -> None:
    m = core(B)
    m.request(A, "h:1")
    [dial] = m.take()
    assert dial.handshake is not None
    m.commit(dial.handshake)
    assert m.accepted(A, 0) is None and m.take() == []


def test_up_replaces_an_older_connection_then_gossips_and_flushes() -> None:
    m = core()
    old, new, other = FakePeer(B), FakePeer(B), FakePeer("c@h")
    assert m.up(other, "c@h", "h:3", None)
    assert m.up(old, B, "h:2", None)
    m.take()
    m.route(B)  # nothing waits: B is connected
    m.waiting[B] = [("sig", False)]
    assert m.up(new, B, None, None)
    effects = m.take()
    assert [type(e) for e in effects] == [Down, Close, Gossip, Gossip, Up, Flush]
    assert effects[0].peer is old and effects[1].peer is old
    assert effects[2].entries == [(A, "h:1"), ("c@h", "h:3")]  # to the new peer
    assert effects[3].peer is other and effects[3].entries == [(B, "h:2")]
    assert effects[5].queue == [("sig", False)] and new.address == "h:2"
    assert m.peers[B] is new and B not in m.waiting


def test_signals_wait_then_fail_when_no_connection_is_under_way() -> None:
    m = core()
    assert m.route(B) is None  # no address: dropped
    m.remember(B, "h:2")
    queue = m.route(B)
    assert queue == []
    queue.append(("sig", True))  # type: ignore[union-attr]
    [dial] = m.take()
    assert m.dial_ended(B, "h:2", dial.handshake, B, "failed") is None
    [fail] = m.take()
    assert isinstance(fail, Fail) and fail.queue == [("sig", True)]
    assert m.handshakes == {} and m.waiting == {}


def test_a_mismatch_forgets_the_address() -> None:
    m = core()
    m.remember(B, "h:2")
    m.request(B, "h:2")
    [dial] = m.take()
    assert m.dial_ended(B, "h:2", dial.handshake, "c@h", "mismatch") is None
    assert m.addresses == {} and m.names == {}
    assert [type(e) for e in m.take()] == [Fail]


@pytest.mark.parametrize("policy", ["once", "never"])
def test_auto_connect_bars_a_node_that_went_down_until_asked(policy: str) -> None:
    m = core(auto_connect=policy)
    peer = FakePeer(B)
    assert m.up(peer, B, "h:2", None)
    m.down(B, peer, "connection_closed")
    m.take()
    assert B in m.barred and m.route(B) is None
    m.dial_soon("h:2", 0.0)
    m.learn([(B, "h:2")], 0.0)
    assert m.take() == []
    assert m.ask(B)  # an explicit connect lifts the bar
    assert [type(e) for e in m.take()] == [Dial] and B not in m.barred


def test_gossip_dials_unknown_nodes_and_tells_the_others_where_a_dialler_listens() -> None:
    m = core()
    dialler, other = FakePeer(B), FakePeer("c@h")
    m.up(other, "c@h", "h:3", None)
    m.up(dialler, B, None, None)  # B dialled: its address is unknown
    m.take()
    m.learn([(B, "h:2"), ("d@h", "h:4"), (A, "h:1")], 0.0)
    effects = m.take()
    assert [type(e) for e in effects] == [Gossip, Dial]
    assert effects[0].peer is other and effects[0].entries == [(B, "h:2")]
    assert effects[1].name == "d@h" and "d@h" not in m.waiting  # no signal waits on gossip
    assert dialler.address == "h:2" and A not in m.addresses


def test_shutdown_cancels_the_dials_only() -> None:
    m = core()
    m.request(B, "h:2")
    [dial] = m.take()
    m.hello("c@h")
    accepted = m.accepted("c@h", 0)
    m.shutdown()
    assert [e.handshake for e in m.take() if isinstance(e, Cancel)] == [dial.handshake]
    assert accepted is not None and m.route(B) == [] and m.closed
    m.request("d@h", "h:4")
    assert m.take() == []


# -- two nodes, any interleaving ---------------------------------------------------------------


@attrs.define(eq=False)
class Attempt:
    """One connection attempt from ``x`` to ``y``: both programs and the bytes between them."""

    id: int
    x: str
    y: str
    name: str | None  # the node dialled, None for a blind dial
    handle_x: Handshake | None
    handle_y: Handshake | None = None
    to_y: list[str] = attrs.Factory(list)
    to_x: list[str] = attrs.Factory(list)
    state_x: str = "start"  # start, challenge, proof, up, live, wait, done
    state_y: str = "hello"  # hello, proof, up, refuse, live, done
    found: str | None = None
    peer_x: FakePeer | None = None
    peer_y: FakePeer | None = None
    hello_seen: bool = False
    wait_for: str | None = None
    cancelled: bool = False


def other(name: str) -> str:
    return B if name == A else A


class TwoNodes(RuleBasedStateMachine):
    """Two cores, driven as ``Distribution`` drives them, with a model of the handshake."""

    def __init__(self) -> None:
        super().__init__()
        # Tight bounds on background dials, so that some wait for ``pump``.
        limits = {"dial_rate": 1.0, "dial_burst": 2, "max_dials": 1}
        self.cores = {A: core(A, **limits), B: core(B, **limits)}
        for m in self.cores.values():
            m.closed = False
        self.now = 0.0
        self.attempts: list[Attempt] = []
        self.announced: dict[str, list[str]] = {A: [], B: []}  # Up/Down, as seen by each
        self.faults = 0  # faults since the last request
        self.wanted = False

    # -- the driver -------------------------------------------------------------------

    def apply(self, node: str) -> None:
        m = self.cores[node]
        for effect in m.take():
            if isinstance(effect, Dial):
                attempt = Attempt(
                    len(self.attempts), node, other(node), effect.name, effect.handshake
                )
                attempt.found = effect.name  # as the driver's ``found``: the node dialled
                self.attempts.append(attempt)
            elif isinstance(effect, Cancel):
                for attempt in self.attempts:
                    if attempt.handle_x is effect.handshake and attempt.x == node:
                        assert not effect.handshake.committed
                        attempt.cancelled = True  # it fails at its next step
            elif isinstance(effect, Up):
                self.announced[node].append("up")
                assert self.announced[node][-2:] != ["up", "up"], "two NodeUp in a row"
            elif isinstance(effect, Down):
                self.announced[node].append("down")
                assert self.announced[node][-2:] != ["down", "down"], "two NodeDown in a row"
            elif isinstance(effect, Close):
                for attempt in self.attempts:
                    if effect.peer in (attempt.peer_x, attempt.peer_y):
                        self.close_side(attempt, node)
            elif isinstance(effect, Flush):
                assert m.peers[effect.name] is effect.peer
            elif isinstance(effect, Fail):
                assert effect.name not in m.peers

    def finish_x(self, attempt: Attempt, state: str) -> None:
        attempt.state_x = state
        if attempt.name is None:  # a blind dial from dial_soon
            self.cores[attempt.x].blind_dial_ended(ADDRESS[attempt.y])

    def send(self, attempt: Attempt, frm: str, what: str) -> None:
        (attempt.to_y if frm == attempt.x else attempt.to_x).append(what)

    def fail_x(self, attempt: Attempt) -> None:
        """The initiator gives up (an error, a timeout, a cancel): it closes and cleans up."""
        if attempt.state_x in ("start", "challenge", "proof"):
            self.send(attempt, attempt.x, "close")
            self.end_dial(attempt, "failed")

    def end_dial(self, attempt: Attempt, outcome: str) -> None:
        m = self.cores[attempt.x]
        waited = m.dial_ended(
            attempt.name, ADDRESS[attempt.y], attempt.handle_x, attempt.found, outcome
        )
        self.apply(attempt.x)
        if waited is not None and m.expect(waited):
            attempt.state_x, attempt.wait_for = "wait", waited
        else:
            if waited is not None:
                m.wait_ended(waited)
                self.apply(attempt.x)
            self.finish_x(attempt, "done")

    def fail_y(self, attempt: Attempt) -> None:
        if attempt.state_y in ("hello", "proof", "up", "refuse"):
            m = self.cores[attempt.y]
            m.accept_failed(attempt.handle_y)
            if attempt.hello_seen:
                m.hello_ended(attempt.x, False)
            self.apply(attempt.y)
            self.send(attempt, attempt.y, "close")
            attempt.state_y = "done"

    def close_side(self, attempt: Attempt, node: str) -> None:
        """A live connection ends on ``node``'s side: the peer sees the stream close."""
        if node == attempt.x and attempt.state_x == "live":
            attempt.state_x = "done"
            assert attempt.peer_x is not None
            self.cores[node].down(attempt.y, attempt.peer_x, "connection_closed")
            self.send(attempt, node, "close")
            self.apply(node)
        elif node == attempt.y and attempt.state_y == "live":
            attempt.state_y = "done"
            assert attempt.peer_y is not None
            self.cores[node].down(attempt.x, attempt.peer_y, "connection_closed")
            self.send(attempt, node, "close")
            self.apply(node)

    # -- one step of one side of one attempt ----------------------------------------------

    def steps(self) -> list[tuple[Attempt, str]]:
        enabled = []
        for attempt in self.attempts:
            state, inbound = attempt.state_x, bool(attempt.to_x)
            if (
                (attempt.cancelled and state in ("start", "challenge", "proof"))
                or state in ("start", "up")
                or (state in ("challenge", "proof", "live") and inbound)
                or (state == "wait" and attempt.wait_for not in self.cores[attempt.x].waiting)
            ):
                enabled.append((attempt, "x"))
            if attempt.state_y in ("up", "refuse") or (
                attempt.state_y in ("hello", "proof", "live") and attempt.to_y
            ):
                enabled.append((attempt, "y"))
        return enabled

    def step(self, attempt: Attempt, side: str) -> None:
        if side == "x":
            self.step_x(attempt)
        else:
            self.step_y(attempt)

    def step_x(self, attempt: Attempt) -> None:
        m, x, y = self.cores[attempt.x], attempt.x, attempt.y
        state = attempt.state_x
        if attempt.cancelled and state in ("start", "challenge", "proof"):
            self.fail_x(attempt)
            return
        if state == "start":
            self.send(attempt, x, "hello")
            attempt.state_x = "challenge"
            return
        if state == "up":
            attempt.peer_x = FakePeer(y, initiated=True, creation=CREATION[y])
            if m.up(attempt.peer_x, y, ADDRESS[y], attempt.handle_x):
                self.finish_x(attempt, "live")
            else:
                self.send(attempt, x, "close")
                self.finish_x(attempt, "done")
            self.apply(x)
            return
        if state == "wait":
            assert attempt.wait_for is not None
            m.wait_ended(attempt.wait_for)
            self.apply(x)
            self.finish_x(attempt, "done")
            return
        what = attempt.to_x.pop(0)
        if state == "live":
            if what == "close":
                self.close_side(attempt, x)
            return
        if what in ("close", "refused") or (state == "challenge") != (what == "challenge"):
            self.end_dial(attempt, "failed")
            return
        if what == "simultaneous":
            self.end_dial(attempt, "simultaneous")
            return
        if state == "challenge":
            attempt.found = y
            if attempt.handle_x is None:
                attempt.handle_x = m.challenged(y, None)
                self.apply(x)
                if attempt.handle_x is None:
                    self.send(attempt, x, "close")
                    self.end_dial(attempt, "duplicate")
                    return
            self.send(attempt, x, "proof")
            attempt.state_x = "proof"
            return
        # state == "proof", what == "proof": authenticated; up comes after a task switch
        assert attempt.handle_x is not None
        m.commit(attempt.handle_x)
        attempt.state_x = "up"

    def step_y(self, attempt: Attempt) -> None:
        m, x, y = self.cores[attempt.y], attempt.x, attempt.y
        state = attempt.state_y
        if state == "up":
            m.hello_ended(x, True)
            attempt.peer_y = FakePeer(x, creation=CREATION[x])
            if m.up(attempt.peer_y, x, None, attempt.handle_y):
                attempt.state_y = "live"
            else:
                self.send(attempt, y, "close")
                attempt.state_y = "done"
            self.apply(y)
            return
        if state == "refuse":
            m.accept_failed(None)
            m.hello_ended(x, False)
            self.apply(y)
            attempt.state_y = "done"
            return
        what = attempt.to_y.pop(0)
        if state == "live":
            if what == "close":
                self.close_side(attempt, y)
            return
        expected = "hello" if state == "hello" else "proof"
        if what != expected:
            self.fail_y(attempt)
            return
        if state == "hello":
            attempt.hello_seen = True
            m.hello(x)
            self.send(attempt, y, "challenge")
            attempt.state_y = "proof"
            return
        attempt.handle_y = m.accepted(x, CREATION[x])
        self.apply(y)
        if attempt.handle_y is None:
            self.send(attempt, y, "simultaneous")
            attempt.state_y = "refuse"
        else:
            self.send(attempt, y, "proof")
            attempt.state_y = "up"

    # -- rules ------------------------------------------------------------------------------

    @rule(
        node=st.sampled_from([A, B]),
        how=st.sampled_from(["route", "ask", "request", "dial_soon", "watch", "learn"]),
    )
    def want(self, node: str, how: str) -> None:
        m, target = self.cores[node], other(node)
        if how != "dial_soon":
            m.remember(target, ADDRESS[target])
        if how == "route":
            if target not in m.peers:
                m.route(target)
        elif how == "ask":
            if target not in m.peers:
                m.ask(target)
        elif how == "request":
            m.request(target, ADDRESS[target], queue=False)
        elif how == "dial_soon":
            m.dial_soon(ADDRESS[target], self.now)
        elif how == "watch":
            if target not in m.peers:
                m.watch(target)
        else:
            m.learn([(target, ADDRESS[target])], self.now)
        self.apply(node)
        self.wanted = True

    @rule(seconds=st.sampled_from([0.1, 0.5, 2.0]))
    def later(self, seconds: float) -> None:
        """Time passes: the dialer starts what the limits held back (``pump``)."""
        self.now += seconds
        for node, m in self.cores.items():
            m.pump(self.now)
            self.apply(node)

    @precondition(lambda self: bool(self.steps()))
    @rule(data=st.data())
    def advance(self, data: st.DataObject) -> None:
        attempt, side = data.draw(st.sampled_from(self.steps()))
        self.step(attempt, side)

    @precondition(lambda self: any(a.state_x != "done" for a in self.attempts))
    @rule(data=st.data(), side=st.sampled_from(["x", "y"]))
    def fail(self, data: st.DataObject, side: str) -> None:
        """A network error or a timeout on one side of an attempt in its handshake."""
        attempt = data.draw(st.sampled_from(self.attempts))
        self.faults += 1
        if side == "x":
            if attempt.state_x == "wait":
                assert attempt.wait_for is not None
                self.cores[attempt.x].wait_ended(attempt.wait_for)  # the wait timed out
                self.apply(attempt.x)
                self.finish_x(attempt, "done")
            else:
                self.fail_x(attempt)
        else:
            self.fail_y(attempt)

    @precondition(lambda self: any("live" in (a.state_x, a.state_y) for a in self.attempts))
    @rule(data=st.data(), node=st.sampled_from([A, B]))
    def drop(self, data: st.DataObject, node: str) -> None:
        """A live connection is lost (or disconnected) on one side."""
        attempt = data.draw(st.sampled_from(self.attempts))
        self.faults += 1
        self.close_side(attempt, node)

    # -- what must hold ---------------------------------------------------------------------

    @invariant()
    def at_most_one_handshake_per_node_and_it_is_real(self) -> None:
        for node, m in self.cores.items():
            for name, handle in m.handshakes.items():
                owners = [
                    a
                    for a in self.attempts
                    if (a.x == node and a.handle_x is handle and a.state_x != "done")
                    or (a.y == node and a.handle_y is handle and a.state_y != "done")
                ]
                assert owners, f"{node} keeps a handshake with {name} that nobody runs"
            assert all(count > 0 for count in m.hellos.values())

    def teardown(self) -> None:
        # Let everything run to its end, without faults: no timeout is needed but the
        # waits', which end when nothing else can run.
        for _ in range(10_000):
            enabled = self.steps()
            if enabled:
                self.step(*enabled[0])
                continue
            if any(m.next_pump(self.now) is not None for m in self.cores.values()):
                self.later(10.0)
                continue
            waiting = [a for a in self.attempts if a.state_x == "wait"]
            if not waiting:
                break
            attempt = waiting[0]
            assert attempt.wait_for is not None
            self.cores[attempt.x].wait_ended(attempt.wait_for)
            self.apply(attempt.x)
            self.finish_x(attempt, "done")
        a, b = self.cores[A], self.cores[B]
        for m in (a, b):
            assert m.handshakes == {} and m.hellos == {}, "a stuck handshake"
            assert m.waiting == {}, "signals left waiting for ever"
            assert m.dialing == set()
            assert m.background == 0, "a background dial counted for ever"
            assert not m.pending and not m.pending_blind, "a held-back dial never started"
        # At most one connection per pair, the same on both sides.
        live = [x for x in self.attempts if x.state_x == "live" or x.state_y == "live"]
        assert len(live) <= 1, "two connections between the same nodes"
        if live:
            [attempt] = live
            assert attempt.state_x == attempt.state_y == "live"
            assert a.peers[B] in (attempt.peer_x, attempt.peer_y)
            assert b.peers[A] in (attempt.peer_x, attempt.peer_y)
        else:
            assert a.peers == {} and b.peers == {}
            assert not (self.wanted and self.faults == 0), "asked for, no fault, not connected"
        for m in (a, b):
            ups = self.announced[m.name].count("up")
            downs = self.announced[m.name].count("down")
            assert ups - downs == (1 if live else 0)


TwoNodes.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_two_nodes = TwoNodes.TestCase


# -- bounds ------------------------------------------------------------------------------------


def test_gossip_takes_only_node_names_and_addresses() -> None:
    m = core()
    m.learn(
        [
            ("not a node", "h:5"),
            ("a+b c@h", "h:5"),
            ("e@h", "no port"),
            ("f@h", 4370),
            ("g@h",),
            "junk",
            ("ok@h", "h:6"),
        ],
        0.0,
    )
    assert m.addresses == {"ok@h": "h:6"}


def test_the_address_book_is_bounded_and_gives_up_what_never_answered_first() -> None:
    m = core(max_known_nodes=3, connect_all=False)
    connected = FakePeer(B)
    m.up(connected, B, "h:2", None)  # answered, connected
    m.learn([("x@h", "h:10"), ("y@h", "h:11")], 0.0)
    m.learn([("z@h", "h:12")], 0.0)  # full: the oldest that never answered goes
    assert list(m.addresses) == [B, "y@h", "z@h"] and "h:10" not in m.names
    m.down(B, connected, "connection_closed")
    for i in range(10):
        m.learn([(f"n{i}@h", f"h:{20 + i}")], 0.0)
    assert len(m.addresses) == 3 and B in m.addresses  # it answered once: kept longest


def test_an_address_learned_from_gossip_that_never_answers_is_forgotten() -> None:
    m = core()
    m.learn([("x@h", "h:10"), (B, "h:2")], 0.0)
    dials = {d.name: d for d in m.take() if isinstance(d, Dial)}
    m.dial_ended("x@h", "h:10", dials["x@h"].handshake, "x@h", "failed", answered=False)
    assert "x@h" not in m.addresses and "h:10" not in m.names
    peer = FakePeer(B)
    m.up(peer, B, "h:2", dials[B].handshake)
    m.down(B, peer, "connection_closed")
    m.request(B, "h:2")
    [dial] = [d for d in m.take() if isinstance(d, Dial)]
    m.dial_ended(B, "h:2", dial.handshake, B, "failed", answered=False)
    assert m.addresses[B] == "h:2"  # it answered before: a node that is down, kept


def test_background_dials_are_rate_limited_and_capped() -> None:
    m = core(dial_rate=2.0, dial_burst=3, max_dials=4)
    m.learn([(f"n{i}@h", f"h:{10 + i}") for i in range(20)], 0.0)
    dials = [d for d in m.take() if isinstance(d, Dial)]
    assert len(dials) == 3 and m.background == 3 and len(m.pending) == 17
    assert m.next_pump(0.0) == pytest.approx(0.5)
    m.pump(0.5)
    assert len(m.take()) == 1 and m.background == 4
    assert m.next_pump(10.0) is None  # four under way: wait for one to end
    m.dial_ended(dials[0].name, dials[0].address, dials[0].handshake, None, "failed")
    assert m.wake and m.background == 3
    m.pump(10.0)
    assert len([d for d in m.take() if isinstance(d, Dial)]) == 1
    # explicit connections are never held back
    m.remember("c@h", "h:3")
    assert m.ask("c@h")
    assert [type(e) for e in m.take()] == [Dial]


def test_a_held_back_dial_to_a_node_barred_meanwhile_is_not_started() -> None:
    m = core(auto_connect="once", dial_rate=1.0, dial_burst=1)
    peer = FakePeer(B)
    m.learn([("c@h", "h:3"), (B, "h:2")], 0.0)  # B waits for a token
    assert B in m.pending
    m.up(peer, B, "h:2", None)  # B connected by itself, then went down: barred
    m.down(B, peer, "connection_closed")
    m.take()
    m.pump(5.0)
    assert m.take() == [] and not m.pending


def test_blind_background_dials_are_limited_too() -> None:
    m = core(dial_rate=1.0, dial_burst=1, max_dials=8)
    m.dial_soon("h:30", 0.0)
    m.dial_soon("h:31", 0.0)
    m.dial_soon("h:31", 0.0)
    assert [d.address for d in m.take()] == ["h:30"] and list(m.pending_blind) == ["h:31"]
    m.pump(1.0)
    assert [d.address for d in m.take()] == ["h:31"] and m.dialing == {"h:30", "h:31"}
    m.blind_dial_ended("h:30")
    m.blind_dial_ended("h:31")
    assert m.background == 0 and m.dialing == set()


def test_crossing_dials_when_the_kept_one_is_up_before_the_other_proof_arrives() -> None:
    """A falsifying example of ``TwoNodes``, replayed step by step.

    a dials b blind (b answers; a gives that dial up for its named one, and waits),
    then a dials b by name; b dials a, and b's proof reaches a. Then a's dial goes
    through: b accepts it and gives up its own dial, whose proof is already out, and
    a's connection is up. b's proof is then checked on a: a must refuse it, not take
    it as a replacement of the connection both keep (b drops it: neither would be
    left, with no fault at all).
    """
    s = TwoNodes()
    s.want(node=A, how="dial_soon")
    s.want(node=A, how="route")
    blind, named = s.attempts
    for side in "xyxy":
        s.step(blind, side)
    assert (blind.state_x, blind.state_y) == ("wait", "done")
    s.want(node=B, how="route")
    crossing = s.attempts[2]
    for side in "xyx":
        s.step(crossing, side)
    assert crossing.to_y == ["proof"]
    for side in "xyxyxx":  # a's named dial: up on a; b gave its own dial up
        s.step(named, side)
    assert named.state_x == "live" and crossing.cancelled
    s.step(crossing, "y")  # b's proof on a: refused
    assert crossing.handle_y is None and crossing.to_x == ["simultaneous"]
    assert s.cores[A].peers[B] is named.peer_x
    s.teardown()
    assert named.state_x == named.state_y == "live" and s.announced == {A: ["up"], B: ["up"]}


def test_a_late_dial_from_the_peer_is_refused_while_ours_is_up_unless_it_restarted() -> None:
    m = core(A)
    m.request(B, "h:2")
    [dial] = m.take()
    ours = FakePeer(B, initiated=True, creation=22)
    assert m.up(ours, B, "h:2", dial.handshake)
    m.take()
    assert m.accepted(B, 22) is None  # a dial b gave up when it accepted ours
    assert m.take() == [] and m.peers[B] is ours and m.handshakes == {}
    handle = m.accepted(B, 23)  # b restarted: the new connection replaces ours
    assert handle is not None and handle.committed
    restarted = FakePeer(B, creation=23)
    assert m.up(restarted, B, None, handle)
    assert [type(e) for e in m.take()][:2] == [Down, Close]
    # b's connection: a later one from b replaces it (b lost it first)
    again = m.accepted(B, 23)
    assert again is not None and m.up(FakePeer(B, creation=23), B, None, again)
    assert [type(e) for e in m.take()][:2] == [Down, Close]


def test_the_node_whose_name_sorts_second_takes_a_late_dial_as_a_replacement() -> None:
    m = core(B)
    m.request(A, "h:1")
    [dial] = m.take()
    ours = FakePeer(A, initiated=True, creation=11)
    assert m.up(ours, A, "h:1", dial.handshake)
    m.take()
    # a never gives its dial up for ours (its own is kept): a dial from it means it
    # lost ours
    handle = m.accepted(A, 11)
    assert handle is not None and m.up(FakePeer(A, creation=11), A, None, handle)
    assert [type(e) for e in m.take()][:2] == [Down, Close]
