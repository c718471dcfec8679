"""Restart plans (S8-S11): the pure part of the strategies."""

from __future__ import annotations

import pytest
from beamlet.supervisors._plan import RestartPlan, plan_restart
from hypothesis import assume, given, strategies as st


def test_S8_one_for_one_restarts_only_the_failed_child() -> None:
    plan = plan_restart("one_for_one", ["a", "b", "c"], "b", running={"a", "c"}, temporary=())
    assert plan == RestartPlan(start=("b",))


def test_S9_one_for_all_stops_in_reverse_and_restarts_in_order() -> None:
    plan = plan_restart("one_for_all", ["o1", "o2", "o3"], "o1", running={"o2", "o3"}, temporary=())
    assert plan == RestartPlan(stop=("o3", "o2"), start=("o1", "o2", "o3"))


def test_S9_3_temporary_bystanders_are_removed() -> None:
    plan = plan_restart("one_for_all", ["a", "t", "b"], "b", running={"a", "t"}, temporary={"t"})
    assert plan == RestartPlan(stop=("t", "a"), remove=("t",), start=("a", "b"))


def test_S10_rest_for_one_keeps_the_earlier_children() -> None:
    plan = plan_restart(
        "rest_for_one", ["r1", "r2", "r3"], "r2", running={"r1", "r3"}, temporary=()
    )
    assert plan == RestartPlan(stop=("r3",), start=("r2", "r3"))


def test_group_restart_includes_stopped_children_as_otp() -> None:
    # OTP's start_children starts the whole group, stopped members included.
    plan = plan_restart("one_for_all", ["a", "b", "c"], "a", running={"c"}, temporary=())
    assert plan == RestartPlan(stop=("c",), start=("a", "b", "c"))


def test_unknown_strategy_and_child() -> None:
    with pytest.raises(ValueError, match="simple_one_for_one"):
        plan_restart("simple_one_for_one", ["a"], "a", running=(), temporary=())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'z'"):
        plan_restart("one_for_one", ["a"], "z", running=(), temporary=())


@st.composite
def situations(draw: st.DrawFn) -> tuple[str, list[int], int, set[int], set[int]]:
    strategy = draw(st.sampled_from(["one_for_one", "one_for_all", "rest_for_one"]))
    order = draw(st.lists(st.integers(0, 50), min_size=1, max_size=12, unique=True))
    failed = draw(st.sampled_from(order))
    running = set(draw(st.lists(st.sampled_from(order)))) - {failed}
    temporary = set(draw(st.lists(st.sampled_from(order)))) - {failed}
    # A temporary child is never kept without a process.
    assume(temporary <= running)
    return strategy, order, failed, running, temporary


@given(situations())
def test_plan_properties(situation: tuple[str, list[int], int, set[int], set[int]]) -> None:
    strategy, order, failed, running, temporary = situation
    plan = plan_restart(strategy, order, failed, running=running, temporary=temporary)  # type: ignore[arg-type]
    position = {child: i for i, child in enumerate(order)}
    # Stops go in reverse start order, starts in start order.
    assert [position[c] for c in plan.stop] == sorted(
        (position[c] for c in plan.stop), reverse=True
    )
    assert [position[c] for c in plan.start] == sorted(position[c] for c in plan.start)
    # Only running children are stopped; the failed child is always started.
    assert set(plan.stop) <= running
    assert failed in plan.start and failed not in plan.stop
    # Dropped children are exactly the stopped temporaries, and never started.
    assert set(plan.remove) == set(plan.stop) & temporary
    assert not set(plan.remove) & set(plan.start)
    if strategy == "one_for_one":
        assert plan == RestartPlan(start=(failed,))
    else:
        group = order if strategy == "one_for_all" else order[order.index(failed) :]
        # Every running member of the group but the failed one is stopped...
        assert set(plan.stop) == (set(group) & running) - {failed}
        # ...and every non-temporary member is started again.
        assert set(plan.start) == set(group) - set(plan.remove)
        # rest_for_one leaves the earlier children alone.
        untouched = set(order) - set(group)
        assert not untouched & (set(plan.stop) | set(plan.start) | set(plan.remove))
