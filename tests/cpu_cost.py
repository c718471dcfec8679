"""CPU time of a piece of code, measured so that a busy machine does not fake a cost.

Shared by the decoder cost tests. What they check is that decoding costs CPU
linear in the input; what they must not see is the machine's other load:

- thread CPU time, not wall time (other processes) nor the process's (another
  thread of the test process may be busy);
- the least of several runs, and the measured code and its yardstick in turns,
  so both see the same moments of the machine;
- the heap the test process already holds is frozen (``gc.freeze``) while
  measuring: a collection that the measured code sets off then walks only what
  that code made, not everything that earlier tests left alive. (Late in a full
  run that heap is large, and one full collection cost 30 times a decode.)
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["MAX_TURNS", "cpu", "cpu_against", "frozen_heap"]

#: At most this many turns while the measured code is over its bound.
MAX_TURNS = 10


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Collect, then keep what is alive now out of every collection until the block ends."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def cpu(fn: Callable[[], Any], runs: int = 3) -> float:
    """The least CPU time of this thread over ``runs`` calls of ``fn``."""
    best = float("inf")
    for _ in range(runs):
        with frozen_heap():
            started = time.thread_time()
            fn()
            best = min(best, time.thread_time() - started)
    return best


def cpu_against(
    fn: Callable[[], Any], baseline: Callable[[], Any], bound: Callable[[float], float]
) -> tuple[float, float]:
    """The least CPU times of ``fn`` and of ``baseline``, measured in turns.

    Three turns, and up to ``MAX_TURNS`` while ``fn``'s cost is over
    ``bound(baseline's cost)``: a piece of code that really costs too much
    does so every time; a moment of a busy machine does not.
    """
    cost = base = float("inf")
    for turn in range(MAX_TURNS):
        cost = min(cost, cpu(fn, runs=1))
        base = min(base, cpu(baseline, runs=1))
        if turn >= 2 and cost <= bound(base):
            break
    return cost, base
