"""Restart plans: which children a strategy stops, drops and starts. Pure.

Given the children in start order, which of them are running, which are
temporary, and the child that has to be restarted, ``plan_restart`` says what
OTP's ``supervisor:restart/3`` does (S8-S10):

- ``one_for_one``: start the failed child again; touch nothing else.
- ``one_for_all``: stop every other running child in reverse start order, then
  start all children in start order, the failed one included.
- ``rest_for_one``: stop the running children started after the failed one in
  reverse order, then start the failed child and those after it in order.

Temporary children stopped by a plan are dropped, not restarted (S9.3, test
``temporary_bystander``). As in OTP, the group started again includes
children that were not running before (stopped with ``terminate_child``,
ignored at start, or transient children that ended normally): the strategy
starts the whole group afresh. The same plan serves a retry after a failed
restart (S11): the child that failed to start is the new ``failed`` child, so
the children restarted so far are stopped again and the group starts over.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Sequence
from typing import Literal, TypeAlias, get_args

import attrs

__all__ = ["STRATEGIES", "RestartPlan", "Strategy", "check_strategy", "plan_restart"]

#: How a supervisor reacts to the exit of a child that must be restarted.
Strategy: TypeAlias = Literal["one_for_one", "one_for_all", "rest_for_one"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)


def check_strategy(strategy: object) -> None:
    """Raise ``ValueError`` unless ``strategy`` is a known strategy."""
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        raise ValueError(
            f"strategy must be 'one_for_one', 'one_for_all' or 'rest_for_one', not {strategy!r}"
        )


@attrs.frozen
class RestartPlan:
    """What to do, in order: stop, then drop, then start.

    Attributes:
        stop: running children to shut down, in this order (reverse start order).
        remove: temporary children to forget once stopped (never restarted).
        start: children to start, in this order (start order).
    """

    stop: tuple[Hashable, ...] = ()
    remove: tuple[Hashable, ...] = ()
    start: tuple[Hashable, ...] = ()


def plan_restart(
    strategy: Strategy,
    order: Sequence[Hashable],
    failed: Hashable,
    *,
    running: Collection[Hashable],
    temporary: Collection[Hashable],
) -> RestartPlan:
    """Plan the restart of ``failed`` under ``strategy``.

    Args:
        strategy: ``"one_for_one"``, ``"one_for_all"`` or ``"rest_for_one"``.
        order: the ids of all children, in start order.
        failed: the id of the child to restart (it is not running).
        running: the ids of the children that have a live process.
        temporary: the ids of the temporary children.

    Returns:
        The plan.

    Raises:
        ValueError: unknown strategy, or ``failed`` is not in ``order``.
    """
    check_strategy(strategy)
    if failed not in order:
        raise ValueError(f"child {failed!r} is not among the children {list(order)!r}")
    if strategy == "one_for_one":
        return RestartPlan(start=(failed,))
    group = list(order)
    if strategy == "rest_for_one":
        group = group[group.index(failed) :]
    others = [child for child in group if child != failed]
    stop = tuple(child for child in reversed(others) if child in running)
    remove = tuple(child for child in others if child in temporary)
    dropped = set(remove)
    start = tuple(child for child in group if child not in dropped)
    return RestartPlan(stop=stop, remove=remove, start=start)
