"""The time budget of the introspection service's process tables (pure: ``now`` passed in).

Two token buckets, in seconds of the service's own work: one per requesting
node and one for them all. A table is allowed while both its node's bucket
and the total one hold time (more than zero); once built, what its own steps
took is taken from both (so one table may leave them below zero: the next
ones wait until they refill). Each bucket refills at its rate, up to its
burst, with the time that passes.

So a node that floods the service with requests gets at most ``node_rate``
of each second (after its burst), all of them together at most ``rate``,
and with ``node_rate`` below ``rate`` one flooding node always leaves the
others a share. The table of nodes is bounded (``max_nodes``, the least
recently seen forgotten first); a node forgotten starts again with a full
burst, which the total bucket still bounds.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["TableBudget"]


class _Bucket:
    __slots__ = ("at", "level")

    def __init__(self, level: float, at: float) -> None:
        self.level = level
        self.at = at

    def refill(self, now: float, rate: float, burst: float) -> None:
        if now > self.at:
            self.level = min(burst, self.level + (now - self.at) * rate)
            self.at = now


class TableBudget:
    """Per-node and total token buckets of seconds of work.

    Args:
        rate: the share of each second all nodes' tables may take together.
        burst: the seconds of tables all nodes may have at once.
        node_rate: the share of each second one node's tables may take.
        node_burst: the seconds of tables one node may have at once.
        max_nodes: the most nodes remembered.
        now: the time the buckets start full at.
    """

    def __init__(
        self,
        *,
        rate: float,
        burst: float,
        node_rate: float,
        node_burst: float,
        max_nodes: int,
        now: float,
    ) -> None:
        if not 0 < node_rate <= rate or not 0 < node_burst <= burst or max_nodes < 1:
            raise ValueError(
                "TableBudget needs 0 < node_rate <= rate, 0 < node_burst <= burst and "
                f"max_nodes >= 1, not {node_rate=}, {rate=}, {node_burst=}, {burst=}, "
                f"{max_nodes=}"
            )
        self.rate = rate
        self.burst = burst
        self.node_rate = node_rate
        self.node_burst = node_burst
        self.max_nodes = max_nodes
        self._total = _Bucket(burst, now)
        self._nodes: OrderedDict[str, _Bucket] = OrderedDict()

    def allow(self, node: str, now: float) -> bool:
        """Whether ``node`` may have a table now (both its bucket and the total hold time).

        It remembers ``node`` (forgetting the least recently seen node past
        ``max_nodes``), refused or not.
        """
        self._total.refill(now, self.rate, self.burst)
        bucket = self._nodes.get(node)
        if bucket is None:
            if len(self._nodes) >= self.max_nodes:
                self._nodes.popitem(last=False)
            bucket = self._nodes[node] = _Bucket(self.node_burst, now)
        else:
            self._nodes.move_to_end(node)
            bucket.refill(now, self.node_rate, self.node_burst)
        return bucket.level > 0 and self._total.level > 0

    def charge(self, node: str, seconds: float) -> None:
        """Take ``seconds`` (the work of a table ``allow`` let ``node`` have) from its buckets."""
        self._total.level -= seconds
        bucket = self._nodes.get(node)
        if bucket is not None:
            bucket.level -= seconds

    def available(self, node: str, now: float) -> tuple[float, float]:
        """The seconds left at ``now``: ``(node's, total)`` (a node not seen: its full burst).

        It does not change the buckets (nor which node was seen last).
        """
        total = min(self.burst, self._total.level + max(0.0, now - self._total.at) * self.rate)
        bucket = self._nodes.get(node)
        if bucket is None:
            return self.node_burst, total
        mine = min(self.node_burst, bucket.level + max(0.0, now - bucket.at) * self.node_rate)
        return mine, total

    def nodes(self) -> list[str]:
        """The nodes remembered, the least recently seen first."""
        return list(self._nodes)
