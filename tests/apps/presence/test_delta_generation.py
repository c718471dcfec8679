"""Delta generations (the scenarios of Phoenix's delta_generation_test, with our sizing)."""

from __future__ import annotations

import itertools
from typing import Any

from beamlet.actors import Pid
from beamlet.apps.presence._delta import Delta
from beamlet.apps.presence._delta_generation import extract, fills_gap, push, remove_replica
from beamlet.apps.presence._state import PresenceState

_ids = itertools.count(1)


def new_pid() -> Pid:
    return Pid("n@h", next(_ids), 1)


def keys(delta: Delta) -> list[Any]:
    return sorted(e.key for e in delta.entries())


def ranges(delta: Delta) -> dict[str, tuple[int, int]]:
    return {r[0]: (s.start, s.end) for r, s in delta.sections.items()}


def joined(state: PresenceState, key: str) -> Delta:
    state.join(new_pid(), "lobby", key, {})
    return state.take_delta()


def test_generations() -> None:
    s1, s2 = PresenceState(("s1", 1)), PresenceState(("s2", 1))
    sizes = [2, 5, 6]
    d1 = joined(s1, "user1")
    gens = push([], d1, sizes)
    assert gens == [d1, d1, d1]
    # Pushing a duplicate changes nothing.
    assert push(gens, d1, sizes) == [d1, d1, d1]

    gens = push(gens, joined(s1, "user2"), sizes)
    assert [keys(g) for g in gens] == [["user1", "user2"]] * 3

    d3 = joined(s1, "user3")
    gens = push(gens, d3, sizes)
    assert gens[0] == d3  # over the first size: it restarts from the delta
    assert [keys(g) for g in gens] == [
        ["user3"],
        ["user1", "user2", "user3"],
        ["user1", "user2", "user3"],
    ]

    gens = push(gens, joined(s1, "user4"), sizes)
    assert [keys(g) for g in gens] == [
        ["user3", "user4"],
        ["user1", "user2", "user3", "user4"],
        ["user1", "user2", "user3", "user4"],
    ]
    assert ranges(gens[0]) == {"s1": (2, 4)}
    assert ranges(gens[2]) == {"s1": (0, 4)}

    # Another replica's delta.
    user5 = new_pid()
    s2.join(user5, "lobby", "user5", {})
    gens = push(gens, s2.take_delta(), sizes)
    assert [keys(g) for g in gens] == [
        ["user5"],
        ["user1", "user2", "user3", "user4", "user5"],
        ["user1", "user2", "user3", "user4", "user5"],
    ]
    assert ranges(gens[1]) == {"s1": (0, 4), "s2": (0, 1)}

    # A removal drops the presence from every generation that holds it.
    s2.leave_pid(user5)
    gens = push(gens, s2.take_delta(), sizes)
    assert [keys(g) for g in gens] == [
        [],
        ["user1", "user2", "user3", "user4"],
        ["user1", "user2", "user3", "user4"],
    ]
    assert ranges(gens[0]) == {"s2": (0, 2)}
    assert all(g.sections[("s2", 1)].cloud == set() for g in gens)


def test_a_delta_after_a_gap_is_not_merged_into_any_generation() -> None:
    s1, s3 = PresenceState(("s1", 1)), PresenceState(("s3", 1))
    sizes = [5, 10, 15]
    gens = push([], joined(s1, "user1"), sizes)
    old = joined(s3, "a")
    gens = push(gens, old, sizes)
    joined(s3, "b")  # never pushed: a gap
    late = joined(s3, "c")
    gens = push(gens, late, sizes)
    # Each generation restarts from the delta rather than hold a gap.
    assert gens == [late, late, late]
    assert ranges(late) == {"s3": (2, 3)}


def test_remove_replica() -> None:
    s1, s2, s3 = (PresenceState((n, 1)) for n in ("s1", "s2", "s3"))
    s3.replica_up(s2.replica)
    gens = push([], joined(s2, "user2"), [5, 10, 15])
    pruned = remove_replica(gens, s2.replica)
    assert pruned == [Delta(), Delta(), Delta()]
    assert s3.merge(pruned[0]) == ([], [])
    assert s3.get_by_topic("lobby") == []
    assert s1.size() == 0


def test_the_whole_state_is_extracted_if_there_are_no_generations() -> None:
    r1 = PresenceState(("r1", 1))
    joined(r1, "user1")
    remote = ("r2", 1)
    answer = extract(r1, [], remote, {r1.replica: 0, remote: 0})
    assert answer == r1.extract(remote, {r1.replica: 0, remote: 0})
    assert keys(answer) == ["user1"] and ranges(answer) == {"r1": (0, 1)}


def test_the_first_generation_that_fills_the_gap_is_extracted() -> None:
    r1 = PresenceState(("r1", 1))
    d1 = joined(r1, "user1")
    d2 = joined(r1, "user2")
    gens = push(push([], d1, [1, 10]), d2, [1, 10])
    assert gens[0] == d2 and ranges(gens[1]) == {"r1": (0, 2)}
    remote = ("r2", 1)
    assert extract(r1, gens, remote, {r1.replica: 1, remote: 0}) == d2
    assert extract(r1, gens, remote, {r1.replica: 0, remote: 0}) == gens[1]
    # Up to date, or not knowing r1 at all: nothing to send.
    assert extract(r1, gens, remote, {r1.replica: 2, remote: 0}) == Delta()
    assert extract(r1, gens, remote, {remote: 0}) == Delta()


def test_a_generation_missing_part_of_the_gap_is_not_extracted() -> None:
    r1 = PresenceState(("r1", 1))
    r2 = ("r2", 1)
    r1.replica_up(r2)
    joined(r1, "user1")
    d2 = joined(r1, "user2")
    gens = push([], d2, [10])
    remote = ("r3", 1)
    # The remote lacks r1's dot 1, which the only generation does not cover.
    answer = extract(r1, gens, remote, {r1.replica: 0, remote: 0})
    assert ranges(answer) == {"r1": (0, 2)} and keys(answer) == ["user1", "user2"]
    # A gap on a replica the generation does not hold at all: the full state too.
    other = PresenceState(r2)
    other.join(new_pid(), "lobby", "x", {})
    r1.merge(other.take_delta())
    answer = extract(r1, gens, remote, {r1.replica: 1, r2: 0, remote: 0})
    assert ranges(answer) == {"r1": (0, 2), "r2": (0, 1)}


def test_the_extracted_generation_holds_only_what_the_remote_knows() -> None:
    r1 = PresenceState(("r1", 1))
    r2, r3 = PresenceState(("r2", 1)), PresenceState(("r3", 1))
    for r in (r2, r3):
        r1.replica_up(r.replica)
    gens: list[Delta] = []
    for state, key in ((r1, "a"), (r2, "b"), (r3, "c")):
        delta = joined(state, key)
        r1.merge(delta)
        gens = push(gens, delta, [10])
    # r3 asks, knowing r1 but not r2: r2's section is left out, and so is r3's own.
    answer = extract(r1, gens, r3.replica, {r1.replica: 0, r3.replica: 1})
    assert ranges(answer) == {"r1": (0, 1)} and keys(answer) == ["a"]


def test_fills_gap() -> None:
    r = ("r", 1)
    s1 = PresenceState(r)
    joined(s1, "a")
    delta = joined(s1, "b")  # (1, 2]
    assert fills_gap(delta, {r: (1, 2)})
    assert not fills_gap(delta, {r: (0, 2)})
    assert not fills_gap(delta, {r: (1, 3)})
    assert not fills_gap(delta, {})
    assert not fills_gap(delta, {("other", 1): (0, 1)})
