"""Node timers: ``send_after``/``cancel_timer`` and ``receive`` timeouts.

One task per node sleeps until the earliest deadline in a heap; adding an
earlier entry moves that task's cancel-scope deadline. A ``receive`` with a
timeout registers a cheap wake-up entry here instead of opening a cancel scope
of its own. Cancelled entries are dropped lazily, and the heap is rebuilt when
they outnumber the live ones, so it stays bounded by the live entries.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import TYPE_CHECKING, Any

import trio
from outcome import Value
from trio.lowlevel import reschedule

if TYPE_CHECKING:
    from ._ids import Ref
    from ._node import Node
    from ._process import Process

__all__ = ["TIMED_OUT", "Timers", "Wake"]


class _TimedOut:
    __slots__ = ()

    def __repr__(self) -> str:
        return "TIMED_OUT"


#: What a waiting ``receive`` is woken with when its timeout expires.
TIMED_OUT: Any = _TimedOut()


class _Timer:
    __slots__ = ("deadline", "dest", "msg", "ref")

    def __init__(self, deadline: float, ref: Ref | None, dest: Any, msg: Any) -> None:
        self.deadline = deadline
        self.ref = ref  # None once fired or cancelled
        self.dest = dest
        self.msg = msg

    @property
    def dead(self) -> bool:
        return self.ref is None


class Wake:
    """A receive timeout: wakes ``proc`` with ``TIMED_OUT`` unless cancelled first."""

    __slots__ = ("proc", "timers")

    def __init__(self, timers: Timers, proc: Process) -> None:
        self.timers = timers
        self.proc: Process | None = proc

    @property
    def dead(self) -> bool:
        return self.proc is None

    def cancel(self) -> None:
        if self.proc is not None:
            self.proc = None
            self.timers._dead += 1


class Timers:
    """The timers of one node."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._heap: list[tuple[float, int, _Timer | Wake]] = []
        self._live: dict[Ref, _Timer] = {}
        self._seq = itertools.count().__next__
        self._dead = 0
        self._scope: trio.CancelScope | None = None
        # The deadline the timer task sleeps until (a plain float, as reading
        # ``CancelScope.deadline`` is a property call); -inf while it is awake.
        self._wake_at = -math.inf

    def __len__(self) -> int:
        return len(self._heap) - self._dead

    def _push(self, deadline: float, item: _Timer | Wake) -> None:
        heapq.heappush(self._heap, (deadline, self._seq(), item))
        if deadline < self._wake_at:
            self._wake_at = deadline
            if self._scope is not None:
                self._scope.deadline = deadline
        if self._dead > 1024 and self._dead > len(self._heap) // 2:
            self._heap = [entry for entry in self._heap if not entry[2].dead]
            heapq.heapify(self._heap)
            self._dead = 0

    def add(self, seconds: float, dest: Any, msg: Any) -> Ref:
        """Send ``msg`` to ``dest`` after ``seconds``; return the timer's ref."""
        ref = self._node.make_ref()
        timer = _Timer(trio.current_time() + seconds, ref, dest, msg)
        self._live[ref] = timer
        self._push(timer.deadline, timer)
        return ref

    def wake_after(self, seconds: float, proc: Process) -> Wake:
        """Wake ``proc``'s pending receive with ``TIMED_OUT`` after ``seconds``."""
        wake = Wake(self, proc)
        self._push(trio.current_time() + seconds, wake)
        return wake

    def cancel(self, ref: Ref) -> float | None:
        """Cancel a timer; return the seconds it had left, or None."""
        timer = self._live.pop(ref, None)
        if timer is None:
            return None
        timer.ref = None
        self._dead += 1
        if not self._node.is_alive(timer.dest):
            return None
        return max(0.0, timer.deadline - trio.current_time())

    def _drop_dead_top(self) -> None:
        heap = self._heap
        while heap and heap[0][2].dead:
            heapq.heappop(heap)
            self._dead -= 1

    async def run(self) -> None:
        """The node's timer task."""
        while True:
            self._drop_dead_top()
            heap = self._heap
            self._wake_at = heap[0][0] if heap else math.inf
            with trio.CancelScope(deadline=self._wake_at) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
            self._wake_at = -math.inf
            now = trio.current_time()
            heap = self._heap
            while heap and heap[0][0] <= now:
                _deadline, _seq, item = heapq.heappop(heap)
                if item.dead:
                    self._dead -= 1
                elif type(item) is Wake:
                    proc = item.proc
                    item.proc = None
                    if proc is not None and proc._waiting is not None:
                        proc._waiting = None
                        reschedule(proc._task, Value(TIMED_OUT))  # type: ignore[arg-type]
                else:
                    assert isinstance(item, _Timer) and item.ref is not None
                    del self._live[item.ref]
                    item.ref = None
                    self._node.send_quietly(None, item.dest, item.msg)
