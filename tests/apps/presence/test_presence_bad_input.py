"""A presence shard survives any term: random messages, calls, casts and forged replica messages.

Terms come from the same node and from another, sent to the shard's name,
broadcast on the shard's PubSub topic (open to anyone on the PubSub), and
wrapped in the presence's own message classes with random fields. After
them, the shard has the same pid, kept its presences, and still replicates.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from beamlet.actors import (
    Down,
    ExitSignal,
    Pid,
    Ref,
    whereis,
)
from beamlet.apps.presence._messages import (
    GracefulPermdown,
    Heartbeat,
    TransferAck,
    TransferReq,
)
from beamlet.apps.pubsub import broadcast
from beamlet.cluster.simulation import simulated_cluster
from hostile import THROWER_ERRORS, throw
from hypothesis import example, given, settings, strategies as st
from presence_nodes import PR, PS, Nodes

SHARD = f"{PR}.shard0"
SHARD_TOPIC = f"beamlet_presence:{PR}:0"
NODES = ["a@a", "b@b", "x@y"]


def _is_hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


_names = st.sampled_from(["", "a@a", "b@b", "track", "untrack", "update", "lobby"])
_pids = st.builds(Pid, st.sampled_from(NODES), st.integers(0, 2**40), st.integers(1, 2**32 - 1))
_refs = st.builds(Ref, st.sampled_from(NODES), st.integers(0, 2**40), st.integers(1, 2**32 - 1))
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**64, -(2**200)]),
    st.floats(allow_nan=True),
    _names,
    st.binary(max_size=8),
    _pids,
    _refs,
)
_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.one_of(_names, st.integers()), inner, max_size=3),
    ),
    max_leaves=12,
)
# Replica refs and clocks that are almost right, and plain junk. A shard's vsn is
# the wall clock in microseconds, and a heartbeat naming a real node with a vsn
# larger than its shard's is that node's new incarnation (which replaces the old
# one and its presences: not bad input). So the vsns forged for the real nodes are
# all older than any shard (2**40 us is January 1970); any vsn for another name.
_replicas = st.one_of(
    st.tuples(st.sampled_from(NODES[:2]), st.integers(-2, 2**40)),
    st.tuples(st.just(NODES[2]), st.integers(-2, 2**63)),
    _values,
)
_keys = _replicas.filter(_is_hashable)
_clocks = st.one_of(st.dictionaries(_keys, st.integers(-1, 9), max_size=3), _values)
_sections = st.lists(
    st.one_of(
        st.tuples(
            st.integers(-1, 5),
            st.integers(-1, 5),
            st.lists(st.integers(-1, 6), max_size=3),
            st.lists(
                st.lists(st.one_of(st.integers(0, 6), _pids, _names, _values), max_size=5),
                max_size=3,
            ),
        ).map(list),
        _values,
    ),
    max_size=2,
)
_deltas = st.one_of(
    st.none(),
    st.dictionaries(_keys, _sections, max_size=2),
    _values,
)
_forged = st.one_of(
    st.builds(Heartbeat, _replicas, _clocks, _deltas),
    st.builds(TransferReq, st.one_of(st.integers(), _values), _replicas, _clocks),
    st.builds(TransferAck, st.one_of(st.integers(), _values), _replicas, _deltas),
    st.builds(GracefulPermdown, _replicas),
)
_requests = st.one_of(
    st.tuples(st.sampled_from(["track", "untrack", "untrack_pid", "update"]), _values),
    st.tuples(
        st.sampled_from(["track", "update"]), st.one_of(_pids, _values), _values, _values, _values
    ),
    st.tuples(st.just("untrack"), st.one_of(_pids, _values), _values, _values),
)
_terms = st.one_of(
    _values,
    _forged,
    _requests,
    st.builds(Down, _refs, _pids, _values),
    st.builds(ExitSignal, _pids, _values),
)
_actions = st.lists(
    st.tuples(
        st.sampled_from(["call", "cast", "send", "broadcast"]),
        st.sampled_from(["a", "b"]),  # from another node, or from the same
        _terms,
    ),
    min_size=1,
    max_size=10,
)


async def _throw(how: str, term: Any) -> None:
    if how != "broadcast":
        await throw((SHARD, "b@b"), how, term)
        return
    try:
        broadcast(PS, SHARD_TOPIC, term)
    except THROWER_ERRORS:
        pass  # the sender's own failure (the codec): the shard is what is checked


async def _scenario(actions: list[tuple[str, str, Any]]) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        nodes = Nodes(sim)
        refs = await nodes.start_a_and_b()

        async def shard() -> Pid | None:
            return whereis(SHARD)

        before = await sim.run("b", shard)
        for how, source, term in actions:
            await sim.run(source, _throw, how, term)
        await trio.sleep(1)

        # Alive with the same pid, its presences kept, and still replicating.
        assert await sim.run("b", shard) == before
        assert await nodes.listed("b") == refs
        await nodes.check_still_replicating(refs, timeout=5)


@settings(max_examples=25)
@given(actions=_actions)
# A stale heartbeat of a's replica (a vsn of a shard started before this run's),
# forged on a itself: ignored, a's presences stay.
@example(actions=[("send", "a", Heartbeat(("a@a", 1_796_454_220_300_287), {}, None))])
def test_a_shard_survives_any_term(actions: list[tuple[str, str, Any]]) -> None:
    trio.run(_scenario, actions, clock=trio.testing.MockClock(autojump_threshold=0))
