"""Introspection of a live node: a read-only system service, and its client.

Every distributed node runs ``beamlet_introspect`` under its kernel
supervisor (see docs/distribution.md, "The kernel"). It answers what
``beamlet top`` and ``beamlet ping`` show: the node's totals and a table of
its processes. It is reachable only over an authenticated connection (a
peer that holds the cookie; a hidden node is enough), and it is read-only:
it never runs code, spawns, sends or changes anything on the node. Its
answers are bounded: at most ``MAX_LIMIT`` processes, sorted on the node.

The protocol (``call(("beamlet_introspect", node), request)``):

- ``("node_info",)`` -> ``("ok", {"name", "creation", "os_pid", "processes",
  "registered", "nodes", "hidden_nodes", "bytes_in", "bytes_out"})``
  (``nodes`` and ``hidden_nodes`` at most ``MAX_LIMIT`` names each).
- ``("processes", sort, limit)`` -> ``("ok", {"total": n, "processes": [row, ...]})``:
  the ``limit`` (1..``MAX_LIMIT``) processes first by ``sort`` (one of
  ``SORT_KEYS``: "mailbox", "memory", "reductions", "links", "pid"), or
  ``("error", "busy")``. A table looks at every process of the node, so the
  time it takes grows with them (about a second for 50,000), for a request of
  a few bytes: the service has a time budget for tables, and answers "busy"
  past it. Each requesting node may have ``NODE_TABLE_BUDGET`` of each second
  (after a burst of ``NODE_TABLE_BURST`` seconds), all of them together
  ``TABLE_BUDGET`` (after ``TABLE_BURST``): a node that floods the service
  gets "busy" and leaves the others (``beamlet top``) their share. What a
  table is charged is the time of its own steps, not the time the node's
  other tasks ran between them.
- ``("process_info", pid)`` -> ``("ok", row)`` with the process's links and
  monitors listed (at most ``MAX_LIMIT`` each), or ``("error", "noproc")``.

A row is a dict: ``pid``, ``name`` (or None), ``function``, ``status``,
``mailbox`` (its length), ``links``, ``monitors``, ``monitored_by`` (counts;
lists in ``process_info``), ``trap_exits``, ``memory`` (an estimate, in
bytes) and ``reductions`` (how many times it has called ``receive``).
Anything else gets ``("error", ("bad_request", "<short repr>"))``, and is
logged, rate-limited, on the ``beamlet.cluster`` logger; casts and other
messages are dropped (and logged). The client functions below wrap these
calls and raise ``IntrospectError`` on an error reply.
"""

from __future__ import annotations

import heapq
import logging
import os
from typing import Any

import trio
from beamlet.actors import CallExitError, From, GenServer, Pid, call, process_info
from beamlet.actors.lowlevel import BadInputLog, current_node, describe_reason

from ._api import distribution
from ._system import bad_request
from ._table_budget import TableBudget

__all__ = [
    "INTROSPECT",
    "MAX_LIMIT",
    "NODE_TABLE_BUDGET",
    "NODE_TABLE_BURST",
    "SORT_KEYS",
    "TABLE_BUDGET",
    "TABLE_BURST",
    "IntrospectError",
    "child_spec",
    "node_info",
    "process_table",
    "remote_process_info",
]

logger = logging.getLogger("beamlet.cluster")

#: The registered name of each node's introspection service.
INTROSPECT = "beamlet_introspect"

#: The most processes (and links, monitors, node names) one answer holds.
MAX_LIMIT = 1000

#: How ``("processes", sort, limit)`` may sort, largest first ("pid": oldest first).
SORT_KEYS = ("mailbox", "memory", "reductions", "links", "pid")

#: Processes looked at between two checkpoints, so that a node with many
#: processes keeps serving while it answers.
_STEP = 1000

#: The share of each second the service may spend building process tables,
#: for all requesting nodes together (the time of its own steps).
TABLE_BUDGET = 0.25

#: The seconds of tables it may build at once, before ``TABLE_BUDGET`` applies.
TABLE_BURST = 2.0

#: The share of each second it may spend on the tables of one requesting node
#: (half of ``TABLE_BUDGET``: a node that floods it leaves the others the rest).
NODE_TABLE_BUDGET = 0.125

#: The seconds of tables one node may have at once, before ``NODE_TABLE_BUDGET`` applies.
NODE_TABLE_BURST = 1.0

#: The most requesting nodes whose budget the service remembers (the least
#: recently seen is forgotten first; ``TABLE_BUDGET`` still bounds them all).
_MAX_NODES = 1024


class IntrospectError(Exception):
    """An introspection request failed.

    Attributes:
        reason: ``("nodedown", node)``, ``"noproc"`` (no such process),
            ``"busy"`` (see ``NODE_TABLE_BUDGET``), the service's
            ``("bad_request", ...)`` error, or its exit reason.
    """

    def __init__(self, reason: Any, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _row(info: Any, full: bool = False) -> dict[str, Any]:
    links, monitors, monitored_by = info.links, info.monitors, info.monitored_by
    return {
        "pid": info.pid,
        "name": info.name,
        "function": info.function,
        "status": info.status,
        "mailbox": info.message_queue_len,
        "links": list(links[:MAX_LIMIT]) if full else len(links),
        "monitors": len(monitors),
        "monitored_by": list(monitored_by[:MAX_LIMIT]) if full else len(monitored_by),
        "trap_exits": info.trap_exits,
        "memory": info.memory,
        "reductions": info.reductions,
    }


def _sort_key(sort: str) -> Any:
    if sort == "mailbox":
        return lambda info: info.message_queue_len
    if sort == "memory":
        return lambda info: info.memory
    if sort == "reductions":
        return lambda info: info.reductions
    return lambda info: len(info.links)


def _id(pid: Pid) -> int:
    return pid.id


def _well_formed(request: Any) -> bool:
    if type(request) is not tuple or not request or type(request[0]) is not str:
        return False
    tag = request[0]
    if tag == "node_info":
        return len(request) == 1
    if tag == "processes":
        return (
            len(request) == 3
            and type(request[1]) is str
            and request[1] in SORT_KEYS
            and type(request[2]) is int
            and 1 <= request[2] <= MAX_LIMIT
        )
    if tag == "process_info":
        return len(request) == 2 and type(request[1]) is Pid
    return False


class _Introspect(GenServer):
    """The introspection service: read-only answers about this node."""

    async def init(self) -> None:
        self.bad_input = BadInputLog(INTROSPECT, logger)
        self.budget = TableBudget(
            rate=TABLE_BUDGET,
            burst=TABLE_BURST,
            node_rate=NODE_TABLE_BUDGET,
            node_burst=NODE_TABLE_BURST,
            max_nodes=_MAX_NODES,
            now=trio.current_time(),
        )
        self.spent = 0.0  # seconds of the current table's own steps
        self.step_at = 0.0  # when its current step started

    async def handle_call(self, request: Any, caller: From) -> Any:
        if not _well_formed(request):
            self.bad_input.report("call", request)
            return bad_request(request)
        tag = request[0]
        if tag == "node_info":
            return ("ok", self._node_info())
        if tag == "processes":
            requester = caller.pid.node
            if not self.budget.allow(requester, trio.current_time()):
                self.bad_input.report(
                    "call", request, f"busy (over the time budget, asked by {requester})"
                )
                return ("error", "busy")
            self.spent = 0.0
            self.step_at = trio.current_time()
            try:
                return ("ok", await self._processes(request[1], request[2]))
            finally:
                self.spent += trio.current_time() - self.step_at
                self.budget.charge(requester, self.spent)
        pid = request[1]
        node = current_node()
        info = process_info(pid) if not node.is_remote(pid.node) else None
        if info is None:
            return ("error", "noproc")
        return ("ok", _row(info, full=True))

    def _node_info(self) -> dict[str, Any]:
        node = current_node()
        dist = distribution(node)
        bytes_in, bytes_out = dist.traffic()
        return {
            "name": node.name,
            "creation": node.creation,
            "os_pid": os.getpid(),
            "processes": len(node.processes()),
            "registered": len(node.registered()),
            "nodes": dist.nodes("visible")[:MAX_LIMIT],
            "hidden_nodes": dist.nodes("hidden")[:MAX_LIMIT],
            "bytes_in": bytes_in,
            "bytes_out": bytes_out,
        }

    async def _between_steps(self) -> None:
        """A checkpoint between two steps of a table: its steps are charged, the wait not.

        Others' work runs at the checkpoint (the node's processes, and on a
        loaded node much of it): charging the table for it would refuse tables
        for the load of the node, not for what they cost.
        """
        self.spent += trio.current_time() - self.step_at
        await trio.lowlevel.checkpoint()
        self.step_at = trio.current_time()

    async def _processes(self, sort: str, limit: int) -> dict[str, Any]:
        pids = current_node().processes()
        if sort == "pid":
            # The node's own pids differ by id only. Sorting them all at once
            # (Pid's comparison is slow) held the loop for 0.25 s at 50,000.
            first: list[Pid] = []
            for start in range(0, len(pids), _STEP):
                if start:
                    await self._between_steps()
                first = heapq.nsmallest(limit, [*first, *pids[start : start + _STEP]], key=_id)
            chosen = [info for info in map(process_info, first) if info is not None]
            return {"total": len(pids), "processes": [_row(info) for info in chosen]}
        key = _sort_key(sort)
        best: list[Any] = []
        for start in range(0, len(pids), _STEP):
            if start:
                await self._between_steps()
            infos = [process_info(pid) for pid in pids[start : start + _STEP]]
            best = heapq.nlargest(limit, [*best, *(i for i in infos if i is not None)], key=key)
        return {"total": len(pids), "processes": [_row(info) for info in best]}

    async def handle_cast(self, request: Any) -> None:
        self.bad_input.report("cast", request, "unexpected")

    async def handle_info(self, msg: Any) -> None:
        self.bad_input.report("message", msg, "unexpected")


def child_spec() -> dict[str, Any]:
    """The child spec of the node's introspection service (the kernel runs it)."""
    return _Introspect.child_spec(id="introspect", name=INTROSPECT)


async def _ask(node: str, request: tuple[Any, ...], timeout: float | None) -> Any:
    try:
        answer = await call((INTROSPECT, node), request, timeout)
    except CallExitError as exc:
        reason = exc.reason
        if reason in ("noproc", "noconnection") or (
            type(reason) is tuple and len(reason) == 2 and reason[0] == "nodedown"
        ):
            reason = ("nodedown", node)
            why = f"node {node} is down, unreachable or not distributed"
        else:
            why = f"its introspection service {describe_reason(reason)}"
        raise IntrospectError(reason, f"{request[0]} on {node} failed: {why}") from None
    status, value = answer
    if status != "ok":
        if value == "busy":
            raise IntrospectError(
                value,
                f"{request[0]} on {node} failed: its introspection service is busy (it spent "
                "its time budget for process tables); try again in a few seconds",
            )
        raise IntrospectError(value, f"{request[0]} on {node} failed: {value!r}")
    return value


async def node_info(node: str, *, timeout: float | None = 5.0) -> dict[str, Any]:
    """The totals of ``node``: processes, connected nodes, distribution bytes in and out.

    Raises:
        IntrospectError: the node is down or refused the request.
        CallTimeoutError: no answer within ``timeout`` seconds.

    Cancellation:
        A checkpoint.
    """
    result: dict[str, Any] = await _ask(node, ("node_info",), timeout)
    return result


async def process_table(
    node: str, *, sort: str = "reductions", limit: int = 20, timeout: float | None = 5.0
) -> dict[str, Any]:
    """The first ``limit`` processes of ``node`` by ``sort``, and how many it runs.

    Args:
        sort: one of ``SORT_KEYS``.
        limit: 1..``MAX_LIMIT``.

    Returns:
        ``{"total": n, "processes": [row, ...]}`` (see the module docstring).

    Raises:
        ValueError: a bad ``sort`` or ``limit`` (checked here, before asking).
        IntrospectError: as for ``node_info``; ``"busy"``: the node spent its
            time budget for this node's tables (``NODE_TABLE_BUDGET``) or for
            all (``TABLE_BUDGET``): try again later.
        CallTimeoutError: as for ``node_info``.
    """
    if sort not in SORT_KEYS:
        raise ValueError(f"sort must be one of {', '.join(SORT_KEYS)}, not {sort!r}")
    if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an int in 1..{MAX_LIMIT}, not {limit!r}")
    result: dict[str, Any] = await _ask(node, ("processes", sort, limit), timeout)
    return result


async def remote_process_info(pid: Pid, *, timeout: float | None = 5.0) -> dict[str, Any]:
    """One process's row, with its links and monitors listed, from its own node.

    Raises:
        IntrospectError: ``"noproc"`` if it is not alive; as for ``node_info``.
        CallTimeoutError: no answer within ``timeout`` seconds.
    """
    result: dict[str, Any] = await _ask(pid.node, ("process_info", pid), timeout)
    return result
