"""The pure process-group state: local multiplicity, remote sync, node loss."""

from __future__ import annotations

from collections import Counter

from beamlet.actors import Pid
from beamlet.cluster._pg_state import GroupsState
from hypothesis import given, settings, strategies as st

A = "a@a"
B = "b@b"


def pid(node: str, n: int) -> Pid:
    return Pid(node, n, 1)


def test_join_twice_needs_two_leaves() -> None:
    state = GroupsState()
    p = pid(A, 1)
    state.join("g", [p])
    state.join("g", [p])
    assert state.members("g") == [p, p]
    assert state.leave("g", [p]) == ("leave", "g", [p])
    assert state.members("g") == [p]
    assert state.leave("g", [p]) is not None
    assert state.members("g") == []
    assert state.groups() == []


def test_leave_not_joined_returns_none() -> None:
    state = GroupsState()
    assert state.leave("g", [pid(A, 1)]) is None


def test_drop_local_removes_every_membership() -> None:
    state = GroupsState()
    p, q = pid(A, 1), pid(A, 2)
    state.join("g", [p, q, p])
    state.join("h", [p])
    changes = state.drop_local(p)
    assert sorted(changes) == [("leave", "g", [p, p]), ("leave", "h", [p])]
    assert state.members("g") == [q]
    assert state.groups() == ["g"]


def test_sync_reports_the_difference_and_drop_node_clears() -> None:
    state = GroupsState()
    r1, r2, r3 = pid(B, 1), pid(B, 2), pid(B, 3)
    assert state.sync(B, {"g": [r1, r2]}) == [("join", "g", [r1, r2])]
    changes = state.sync(B, {"g": [r2, r3]})
    assert sorted(changes) == [("join", "g", [r3]), ("leave", "g", [r1])]
    assert sorted(state.members("g")) == [r2, r3]
    assert state.drop_node(B) == [("leave", "g", [r2, r3])]
    assert state.members("g") == []


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["join", "leave"]), st.sampled_from(["g", "h"]), st.integers(1, 3)
        ),
        max_size=40,
    )
)
def test_local_membership_matches_a_multiset_model(ops: list[tuple[str, str, int]]) -> None:
    state = GroupsState()
    model: dict[str, Counter[Pid]] = {"g": Counter(), "h": Counter()}
    for op, group, n in ops:
        p = pid(A, n)
        if op == "join":
            state.join(group, [p])
            model[group][p] += 1
        else:
            change = state.leave(group, [p])
            assert (change is not None) == (model[group][p] > 0)
            if model[group][p]:
                model[group][p] -= 1
    for group, counts in model.items():
        assert Counter(state.members(group)) == +counts


@settings(max_examples=200)
@given(
    st.lists(
        st.dictionaries(st.sampled_from(["g", "h"]), st.lists(st.integers(1, 4), max_size=4)),
        min_size=1,
        max_size=6,
    )
)
def test_successive_syncs_replay_to_the_last_report(reports: list[dict[str, list[int]]]) -> None:
    state = GroupsState()
    shadow: dict[str, Counter[Pid]] = {}
    for report in reports:
        groups = {g: [pid(B, n) for n in ns] for g, ns in report.items()}
        for kind, group, pids in state.sync(B, groups):
            bucket = shadow.setdefault(group, Counter())
            for p in pids:
                bucket[p] += 1 if kind == "join" else -1
    last = {g: Counter(pid(B, n) for n in ns) for g, ns in reports[-1].items()}
    for group in {"g", "h"}:
        assert +shadow.get(group, Counter()) == last.get(group, Counter())
        assert Counter(state.members(group)) == last.get(group, Counter())
