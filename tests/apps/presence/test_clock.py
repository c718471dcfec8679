"""Version vectors and clocksets (Phoenix's clock_test, plus properties)."""

from __future__ import annotations

from beamlet.apps.presence._clock import (
    Clock,
    append_clock,
    clockset_replicas,
    dominates,
    dominates_or_equal,
    filter_replicas,
    lowerbound,
    upperbound,
)
from hypothesis import given, strategies as st

A, B, C, D = ("a", 1), ("b", 1), ("c", 1), ("d", 1)


def test_dominates() -> None:
    clock1 = {A: 1, B: 2, C: 3}
    clock2 = {B: 2, C: 3, D: 1}
    clock3 = {A: 1, B: 2}
    assert dominates(clock1, clock3)
    assert not dominates(clock3, clock1)
    assert not dominates(clock1, clock2)
    assert dominates(clock1, clock1)


def test_a_missing_replica_counts_as_zero() -> None:
    assert dominates({A: 1}, {A: 1, B: 0})
    assert not dominates({A: 1}, {A: 1, B: 1})
    assert dominates({}, {})


def test_dominates_or_equal_compares_the_first_clocks_replicas_only() -> None:
    assert dominates_or_equal({A: 2}, {A: 1, B: 5})
    assert not dominates_or_equal({A: 2, B: 1}, {A: 1, B: 5})
    assert dominates_or_equal({}, {})
    assert not dominates_or_equal({}, {A: 1})


def test_the_clockset_trims() -> None:
    clock1 = (A, {A: 1, B: 2, C: 3})
    clock2 = (B, {B: 2, C: 3, D: 1})
    clock3 = (C, {A: 1, B: 2})
    assert sorted(append_clock([clock2, clock3], clock1)) == [clock2, clock3]
    assert sorted(append_clock([clock1, clock2], clock3)) == [clock1, clock2]
    assert sorted(append_clock([clock1, clock2], clock1)) == [clock1, clock2]
    assert sorted(append_clock([clock1, clock2], clock2)) == [clock1, clock2]
    assert sorted(append_clock([clock1, clock3], clock2)) == [clock1, clock2, clock3]
    assert sorted(clockset_replicas(append_clock([clock2, clock3], clock1))) == [B, C]


def test_a_dominating_clock_replaces_the_set_and_ties_go_to_the_newcomer() -> None:
    assert append_clock([(A, {A: 1}), (B, {B: 1})], (C, {A: 1, B: 1})) == [(C, {A: 1, B: 1})]
    assert append_clock([(A, {A: 1, B: 1})], (B, {A: 1, B: 1})) == [(B, {A: 1, B: 1})]


def test_an_empty_clock_adds_nothing() -> None:
    assert append_clock([(A, {A: 1})], (B, {})) == [(A, {A: 1})]
    assert append_clock([], (B, {})) == []


def test_upperbound_and_lowerbound() -> None:
    assert upperbound({A: 1, B: 2, C: 2}, {A: 3, B: 1, D: 2}) == {A: 3, B: 2, C: 2, D: 2}
    assert upperbound({}, {A: 3, B: 1, D: 2}) == {A: 3, B: 1, D: 2}
    assert upperbound({A: 3, B: 1, D: 2}, {}) == {A: 3, B: 1, D: 2}
    assert lowerbound({A: 1, B: 2, C: 2}, {A: 3, B: 1, D: 2}) == {A: 1, B: 1, C: 2, D: 2}
    assert lowerbound({}, {A: 3, B: 1, D: 2}) == {A: 3, B: 1, D: 2}
    assert lowerbound({A: 3, B: 1, D: 2}, {}) == {A: 3, B: 1, D: 2}


def test_filter_replicas() -> None:
    clock = {A: 1, B: 2, C: 3}
    assert filter_replicas(clock, [A, B]) == {A: 1, B: 2}
    assert filter_replicas(clock, [A, D]) == {A: 1}
    assert filter_replicas(clock, [D]) == {}


replicas = st.sampled_from([A, B, C, D])
clocks = st.dictionaries(replicas, st.integers(0, 4), max_size=4)


@given(clocks, clocks)
def test_upperbound_dominates_both_and_lowerbound_is_dominated(c1: Clock, c2: Clock) -> None:
    up = upperbound(c1, c2)
    assert up == upperbound(c2, c1)
    assert dominates(up, c1) and dominates(up, c2)
    low = lowerbound(c1, c2)
    assert low == lowerbound(c2, c1)
    shared = c1.keys() & c2.keys()
    assert all(low[r] <= min(c1[r], c2[r]) for r in shared)


@given(st.lists(st.tuples(replicas, clocks), max_size=8))
def test_the_clockset_covers_every_clock_appended(
    entries: list[tuple[tuple[str, int], Clock]],
) -> None:
    clockset: list[tuple[tuple[str, int], Clock]] = []
    for entry in entries:
        clockset = append_clock(clockset, entry)
    union: Clock = {}
    for _, clock in clockset:
        union = upperbound(union, clock)
    for _, clock in entries:
        assert dominates(union, clock)
    # No member is dominated by another member appended after it.
    for i, (_, early) in enumerate(clockset):
        for _, late in clockset[i + 1 :]:
            assert not (dominates(late, early) and late != early)
