"""Node timers: ``send_after``/``cancel_timer``, and the timeouts of waits.

One task per node sleeps until the earliest deadline in a heap; adding an
earlier entry moves that task's cancel-scope deadline. Cancelled ``send_after``
timers are dropped lazily, and the heap is rebuilt when they outnumber the
live ones, so it stays bounded by the live entries.

Timeouts of waits (a ``receive`` with a timeout, a ``call`` waiting for its
reply) are far more frequent than ``send_after`` and are nearly always over
before they expire, so they take a cheaper path than a heap entry each: a
wait with a timeout of ``d`` seconds goes at the end of the *lane* for ``d``,
a FIFO in which deadlines never decrease (the clock does not go back), so
only the head of a lane needs an entry in the heap. A wait that ends marks
itself over (``target = None``); dead entries are dropped from the head of
their lane when a new one is added, or when the timer task looks at the lane,
and a lane is compacted when it is mostly dead. Entries fire in the order of
their deadlines, and of their creation for equal deadlines, as heap entries
would.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from typing import TYPE_CHECKING, Any

import trio
from outcome import Value
from trio.lowlevel import reschedule

if TYPE_CHECKING:
    from ._ids import Ref
    from ._node import Node
    from ._process import Process

__all__ = ["TIMED_OUT", "Timers", "Wait", "Wake"]


class _TimedOut:
    __slots__ = ()

    def __repr__(self) -> str:
        return "TIMED_OUT"


#: What a waiting ``receive`` (or reply wait) is woken with when its timeout expires.
TIMED_OUT: Any = _TimedOut()

#: Lanes kept at once; timeouts of more distinct durations go to the heap.
MAX_LANES = 64


class _Timer:
    __slots__ = ("deadline", "dest", "msg", "ref")

    def __init__(self, deadline: float, ref: Ref | None, dest: Any, msg: Any) -> None:
        self.deadline = deadline
        self.ref = ref  # None once fired or cancelled
        self.dest = dest
        self.msg = msg


class Wait:
    """A wait with a timeout: ``expire()`` runs at ``deadline`` unless ``target`` is None by then.

    Subclasses set ``target`` (not None) when the wait starts, set it to None
    when it ends, and define ``expire``.
    """

    __slots__ = ("deadline", "seq", "target")

    deadline: float
    seq: int
    target: Any

    def expire(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError


class Wake(Wait):
    """A ``receive`` timeout: wakes ``proc``'s pending receive with ``TIMED_OUT``."""

    __slots__ = ()

    def __init__(self, proc: Process) -> None:
        self.target = proc

    def cancel(self) -> None:
        self.target = None

    def expire(self) -> None:
        proc = self.target
        self.target = None
        if proc is not None and proc._waiting is not None:
            proc._waiting = None
            reschedule(proc._task, Value(TIMED_OUT))  # type: ignore[arg-type]


class _Lane:
    """The waits of one timeout duration, in the order of their deadlines."""

    __slots__ = ("entries", "limit", "scheduled", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.entries: deque[Wait] = deque()
        self.scheduled = False  # whether the heap holds an entry for this lane
        self.limit = 1024  # compact when the lane grows past this


def _is_live(entry: tuple[float, int, _Timer | _Lane | Wait]) -> bool:
    item = entry[2]
    if type(item) is _Timer:
        return item.ref is not None
    if type(item) is _Lane:
        return True
    return item.target is not None  # type: ignore[union-attr]


class Timers:
    """The timers of one node."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._heap: list[tuple[float, int, _Timer | _Lane | Wait]] = []
        self._limit = 1024  # compact the heap when it grows past this
        self._live: dict[Ref, _Timer] = {}
        self._lanes: dict[float, _Lane] = {}
        self._seq = itertools.count().__next__
        self._scope: trio.CancelScope | None = None
        # The deadline the timer task sleeps until (a plain float, as reading
        # ``CancelScope.deadline`` is a property call); -inf while it is awake.
        self._wake_at = -math.inf
        self._clock: Any = None  # the bound current_time of the run's clock

    def __len__(self) -> int:
        """The live entries: pending ``send_after`` timers and waits with a timeout."""
        lanes = self._lanes.values()
        waits = sum(1 for lane in lanes for w in lane.entries if w.target is not None)
        loose = sum(1 for e in self._heap if isinstance(e[2], Wait) and e[2].target is not None)
        return len(self._live) + waits + loose

    def now(self) -> float:
        """The current Trio time (the run's clock, read without ``trio.current_time``'s layers)."""
        clock = self._clock
        if clock is None:
            clock = self._clock = trio.lowlevel.current_clock().current_time
        return clock()  # type: ignore[no-any-return]

    def _push(self, deadline: float, seq: int, item: _Timer | _Lane | Wait) -> None:
        heap = self._heap
        if len(heap) >= self._limit:
            heap = self._heap = [entry for entry in heap if _is_live(entry)]
            heapq.heapify(heap)
            self._limit = max(1024, 2 * len(heap))
        heapq.heappush(heap, (deadline, seq, item))
        if deadline < self._wake_at:
            self._wake_at = deadline
            if self._scope is not None:
                self._scope.deadline = deadline

    def add(self, seconds: float, dest: Any, msg: Any) -> Ref:
        """Send ``msg`` to ``dest`` after ``seconds``; return the timer's ref."""
        ref = self._node.make_ref()
        timer = _Timer(self.now() + seconds, ref, dest, msg)
        self._live[ref] = timer
        self._push(timer.deadline, self._seq(), timer)
        return ref

    def wait(self, wait: Wait, seconds: float) -> None:
        """Call ``wait.expire()`` after ``seconds``, unless ``wait.target`` is None by then."""
        deadline = wait.deadline = self.now() + seconds
        seq = wait.seq = self._seq()
        lane = self._lanes.get(seconds)
        if lane is None:
            if len(self._lanes) >= MAX_LANES:
                self._push(deadline, seq, wait)
                return
            lane = self._lanes[seconds] = _Lane(seconds)
        entries = lane.entries
        while entries and entries[0].target is None:
            entries.popleft()
        entries.append(wait)
        if not lane.scheduled:
            lane.scheduled = True
            self._push(deadline, seq, lane)
        elif len(entries) > lane.limit:
            lane.entries = entries = deque(w for w in entries if w.target is not None)
            lane.limit = max(1024, 2 * len(entries))

    def wake_after(self, seconds: float, proc: Process) -> Wake:
        """Wake ``proc``'s pending receive with ``TIMED_OUT`` after ``seconds``."""
        wake = Wake(proc)
        self.wait(wake, seconds)
        return wake

    def cancel(self, ref: Ref) -> float | None:
        """Cancel a timer; return the seconds it had left, or None."""
        timer = self._live.pop(ref, None)
        if timer is None:
            return None
        timer.ref = None
        if not self._node.is_alive(timer.dest):
            return None
        return max(0.0, timer.deadline - self.now())

    def _settle_top(self) -> Any:
        """Drop dead entries from the top of the heap and re-key lanes whose head
        has changed; return the top item, which is then due at its heap key."""
        heap = self._heap
        while heap:
            _deadline, seq, item = heap[0]
            if type(item) is _Lane:
                entries = item.entries
                while entries and entries[0].target is None:
                    entries.popleft()
                if entries:
                    head = entries[0]
                    if head.seq == seq:
                        return item
                    heapq.heapreplace(heap, (head.deadline, head.seq, item))
                    continue
                item.scheduled = False
                del self._lanes[item.seconds]
            elif type(item) is _Timer:
                if item.ref is not None:
                    return item
            elif item.target is not None:  # type: ignore[union-attr]
                return item
            heapq.heappop(heap)
        return None

    async def run(self) -> None:
        """The node's timer task."""
        while True:
            self._settle_top()
            heap = self._heap
            self._wake_at = heap[0][0] if heap else math.inf
            with trio.CancelScope(deadline=self._wake_at) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
            self._wake_at = -math.inf
            now = self.now()
            while True:
                item = self._settle_top()
                heap = self._heap
                if item is None or heap[0][0] > now:
                    break
                if type(item) is _Lane:
                    entries = item.entries
                    wait = entries.popleft()
                    if entries:
                        nxt = entries[0]
                        heapq.heapreplace(heap, (nxt.deadline, nxt.seq, item))
                    else:
                        heapq.heappop(heap)
                        item.scheduled = False
                        del self._lanes[item.seconds]
                    wait.expire()
                    continue
                heapq.heappop(heap)
                if type(item) is _Timer:
                    del self._live[item.ref]  # type: ignore[arg-type]
                    item.ref = None
                    self._node.send_quietly(None, item.dest, item.msg)
                else:
                    item.expire()
