"""The introspection service's time budget for tables: per-node and total token buckets."""

from __future__ import annotations

import pytest
from beamlet.cluster._table_budget import TableBudget
from hypothesis import given, settings, strategies as st


def budget(max_nodes: int = 8, now: float = 0.0) -> TableBudget:
    return TableBudget(
        rate=0.25, burst=2.0, node_rate=0.125, node_burst=1.0, max_nodes=max_nodes, now=now
    )


def test_a_node_is_allowed_while_its_bucket_and_the_total_hold_time() -> None:
    b = budget()
    assert b.allow("a", 0.0)
    b.charge("a", 0.75)
    assert b.available("a", 0.0) == (0.25, 1.25)
    assert b.allow("a", 0.0)
    b.charge("a", 0.75)
    assert not b.allow("a", 0.0)  # -0.5
    assert b.available("a", 4.0) == (0.0, 1.5)  # 0.125 and 0.25 a second
    assert not b.allow("a", 4.0)  # zero is not time left
    assert b.allow("a", 4.5)


def test_one_node_spending_its_budget_leaves_others_theirs_until_the_total_is_spent() -> None:
    b = budget()
    assert b.allow("a", 0.0)
    b.charge("a", 1.5)
    assert not b.allow("a", 0.0)
    assert b.allow("c", 0.0)
    b.charge("c", 0.25)
    assert b.available("c", 0.0) == (0.75, 0.25)
    assert b.allow("d", 0.0)
    b.charge("d", 0.5)
    assert not b.allow("e", 0.0)  # e's own bucket is full, the total is spent
    assert b.available("e", 0.0) == (1.0, -0.25)


def test_buckets_refill_up_to_their_burst() -> None:
    b = budget()
    assert b.allow("a", 0.0)
    b.charge("a", 3.0)
    assert b.available("a", 10.0) == (-0.75, 1.5)
    assert b.available("a", 1000.0) == (1.0, 2.0)
    assert b.allow("a", 1000.0)
    assert b.available("a", 1000.0) == (1.0, 2.0)


def test_the_nodes_remembered_are_bounded_the_least_recently_seen_forgotten() -> None:
    b = budget(max_nodes=2)
    for node in ("a", "b", "a", "c"):
        b.allow(node, 0.0)
        b.charge(node, 0.5)
    assert b.nodes() == ["a", "c"]  # b was seen least recently
    assert b.available("b", 0.0) == (1.0, 0.0)  # forgotten: a full burst, the total spent


def test_bad_parameters_are_refused_with_the_values() -> None:
    with pytest.raises(ValueError, match=r"node_rate=0\.5, rate=0\.25"):
        TableBudget(rate=0.25, burst=2.0, node_rate=0.5, node_burst=1.0, max_nodes=4, now=0.0)
    with pytest.raises(ValueError, match="max_nodes=0"):
        TableBudget(rate=0.25, burst=2.0, node_rate=0.1, node_burst=1.0, max_nodes=0, now=0.0)


requests = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e"]),
        st.floats(min_value=0.0, max_value=5.0),  # time since the previous request
        st.floats(min_value=0.0, max_value=2.0),  # what the table costs, if allowed
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(requests, st.integers(min_value=1, max_value=6))
def test_what_tables_cost_is_bounded_per_node_and_in_total(
    steps: list[tuple[str, float, float]], max_nodes: int
) -> None:
    b = budget(max_nodes=max_nodes)
    now = 0.0
    spent: dict[str, float] = {}
    most = 0.0
    for node, wait, cost in steps:
        now += wait
        if b.allow(node, now):
            b.charge(node, cost)
            spent[node] = spent.get(node, 0.0) + cost
            most = max(most, cost)
        assert len(b.nodes()) <= max_nodes
        assert b.nodes()[-1] == node
        mine, total = b.available(node, now)
        assert mine <= b.node_burst and total <= b.burst
    # In total: the burst, the rate over the time, and one table over the last second left.
    assert sum(spent.values()) <= b.burst + b.rate * now + most + 1e-9
    if max_nodes >= 5:  # no node forgotten: each within its own budget
        for cost in spent.values():
            assert cost <= b.node_burst + b.node_rate * now + most + 1e-9
