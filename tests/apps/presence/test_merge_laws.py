"""The merge is a join: commutative, associative, idempotent (Hypothesis properties).

States are built by random histories on three replicas: local joins,
leaves and updates, deltas shipped to one replica only (so the others miss
them: gaps and clouds), full transfers, replicas marked down and up. Then
full states and deltas of those replicas are merged in different orders and
groupings, and the results compared in full (``PresenceState.snapshot``).
"""

from __future__ import annotations

from typing import Any

import pytest
from beamlet.actors import Pid
from beamlet.apps.presence._delta import Delta, Entry, merge_deltas
from beamlet.apps.presence._errors import NotContiguousError
from beamlet.apps.presence._state import PresenceState
from hypothesis import given, settings, strategies as st

NAMES = ("a", "b", "c")
names = st.sampled_from(NAMES)
Op = tuple[Any, ...]

ops = st.one_of(
    st.tuples(
        st.just("join"), names, st.integers(0, 2), st.sampled_from("xy"), st.sampled_from("kl")
    ),
    st.tuples(
        st.just("leave"), names, st.integers(0, 2), st.sampled_from("xy"), st.sampled_from("kl")
    ),
    st.tuples(
        st.just("update"), names, st.integers(0, 2), st.sampled_from("xy"), st.sampled_from("kl")
    ),
    st.tuples(st.just("ship"), names, names),
    st.tuples(st.just("sync"), names, names),
    st.tuples(st.just("down"), names, names),
    st.tuples(st.just("up"), names, names),
)
histories = st.lists(ops, max_size=40)


def build(history: list[Op]) -> tuple[dict[str, PresenceState], list[Delta]]:
    """Replay a history; return the states and every delta taken along the way."""
    states = {n: PresenceState((n, 1)) for n in NAMES}
    for s in states.values():
        for other in states.values():
            if other is not s:
                s.replica_up(other.replica)
    deltas: list[Delta] = []
    for n, op in enumerate(history):
        kind, name = op[0], op[1]
        state = states[name]
        if kind in ("join", "leave", "update"):
            _, _, slot, topic, key = op
            pid = Pid(name, slot, 1)
            present = state.lookup(pid, topic, key) is not None
            if kind == "join" and not present:
                state.join(pid, topic, key, {"n": n})
            elif kind == "leave":
                state.leave(pid, topic, key)
            elif kind == "update" and present:
                state.update(pid, topic, key, {"n": n})
        elif kind == "ship":
            delta = state.take_delta()
            deltas.append(delta)
            if op[2] != name:
                states[op[2]].merge(delta)
        elif kind == "sync" and op[2] != name:
            dst = states[op[2]]
            dst.merge(state.extract(dst.replica, dst.context))
        elif kind == "down" and op[2] != name:
            state.replica_down(states[op[2]].replica)
        elif kind == "up" and op[2] != name:
            state.replica_up(states[op[2]].replica)
    return states, deltas


def payload(states: dict[str, PresenceState], src: str, dst: str, full: bool) -> Delta:
    source, target = states[src], states[dst]
    return source.extract(target.replica, target.context) if full else source.peek_delta()


def merged(state: PresenceState, *payloads: Delta) -> PresenceState:
    out = state.copy()
    for p in payloads:
        before = {e.dot: e for e in out.online_list()}
        joins, leaves = out.merge(p)
        # The returned diff is exactly the change to what is listed.
        for e in leaves:
            assert before.pop(e.dot) == e
        for e in joins:
            assert e.dot not in before
            before[e.dot] = e
        assert before == {e.dot: e for e in out.online_list()}
    return out


def listed(state: PresenceState) -> set[Entry]:
    return set(state.online_list())


@settings(max_examples=150)
@given(histories, names, names, st.booleans())
def test_merge_is_idempotent(history: list[Op], src: str, dst: str, full: bool) -> None:
    states, _ = build(history)
    p = payload(states, src, dst, full)
    once = merged(states[dst], p)
    snapshot = once.snapshot()
    assert once.merge(p) == ([], [])
    assert once.snapshot() == snapshot


@settings(max_examples=150)
@given(histories, names, names, names, st.booleans(), st.booleans())
def test_merge_is_commutative(
    history: list[Op], x: str, y: str, z: str, full_x: bool, full_y: bool
) -> None:
    states, _ = build(history)
    p, q = payload(states, x, z, full_x), payload(states, y, z, full_y)
    assert merged(states[z], p, q).snapshot() == merged(states[z], q, p).snapshot()


@settings(max_examples=150)
@given(histories, st.permutations(NAMES))
def test_merge_is_associative(history: list[Op], order: list[str]) -> None:
    x, y, z = order
    states, _ = build(history)
    # (z + x) + y
    left = merged(states[z], payload(states, x, z, True), payload(states, y, z, True))
    # z + (y + x)
    y_with_x = merged(states[y], payload(states, x, y, True))
    right = merged(states[z], y_with_x.extract(states[z].replica, states[z].context))
    assert left.snapshot() == right.snapshot()


@settings(max_examples=150)
@given(histories, st.data())
def test_merge_deltas_is_a_join_and_agrees_with_merging_one_by_one(
    history: list[Op], data: st.DataObject
) -> None:
    states, deltas = build(history)
    deltas += [s.take_delta() for s in states.values()]
    d1, d2, d3 = (data.draw(st.sampled_from(deltas)) for _ in range(3))
    try:
        d12 = merge_deltas(d1, d2)
    except NotContiguousError:
        # Contiguity is symmetric.
        with pytest.raises(NotContiguousError):
            merge_deltas(d2, d1)
        return
    assert merge_deltas(d2, d1) == d12
    assert merge_deltas(d12, d12) == d12
    assert merge_deltas(d12, d1) == d12
    target = states[data.draw(names)]
    assert merged(target, d12).snapshot() == merged(target, d1, d2).snapshot()
    try:
        d12_3 = merge_deltas(d12, d3)
        d1_23 = merge_deltas(d1, merge_deltas(d2, d3))
    except NotContiguousError:
        return
    assert d12_3 == d1_23


@settings(max_examples=100)
@given(histories)
def test_replicas_that_exchange_full_states_list_the_same(history: list[Op]) -> None:
    states, _ = build(history)
    for s in states.values():
        for other in states.values():
            if other is not s:
                s.replica_up(other.replica)
    for _ in range(2):
        for src in NAMES:
            for dst in NAMES:
                if src != dst:
                    states[dst].merge(states[src].extract(states[dst].replica, states[dst].context))
    lists = [listed(s) for s in states.values()]
    assert lists[0] == lists[1] == lists[2]
    contexts = [s.context for s in states.values()]
    assert contexts[0] == contexts[1] == contexts[2]
    assert all(s.cloud(r) == set() for s in states.values() for r in s.context)


one_replica_ops = st.lists(
    st.tuples(
        st.sampled_from(["join", "leave", "update", "ship"]),
        st.just("a"),
        st.integers(0, 2),
        st.sampled_from("xy"),
        st.sampled_from("kl"),
    ).map(lambda op: op if op[0] != "ship" else ("ship", "a", "a")),
    max_size=40,
)


@settings(max_examples=150)
@given(one_replica_ops, st.data())
def test_joined_consecutive_deltas_equal_the_deltas_in_turn_and_the_full_state(
    history: list[Op], data: st.DataObject
) -> None:
    states, deltas = build(history)
    deltas.append(states["a"].take_delta())
    total = deltas[0]
    for delta in deltas[1:]:
        total = merge_deltas(total, delta)
    b = states["b"]
    one_by_one = merged(b, *deltas)
    assert merged(b, total).snapshot() == one_by_one.snapshot()
    assert listed(one_by_one) == listed(states["a"])
    # Any two of them, in either order.
    d1, d2 = data.draw(st.sampled_from(deltas)), data.draw(st.sampled_from(deltas))
    try:
        d12 = merge_deltas(d1, d2)
    except NotContiguousError:
        return
    assert merge_deltas(d2, d1) == d12
    assert merged(b, d12).snapshot() == merged(b, d2, d1).snapshot()
