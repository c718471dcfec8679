"""The kernel: the supervision tree of a distributed node's system services.

As OTP's ``kernel_sup``, ``start_distribution`` starts one supervisor,
registered as ``"beamlet_kernel_sup"``, with the node's system services as
its children, in this order:

- ``beamlet_rpc``: the rpc server (``rpc``, ``spawn_on``);
- ``beamlet_pg_default``: the ``"default"`` process-group scope;
- ``beamlet_discovery``: runs the discovery strategies (``DNSPoll``...);
- ``beamlet_introspect``: the read-only introspection service
  (``beamlet.cluster.introspect``, what ``beamlet top`` asks).

The strategy is ``one_for_one``: a service that exits, whatever the reason,
is restarted alone and the node keeps serving. A restarted pg scope starts
empty, as Erlang's does (its table went with the old process): its local
members are forgotten and must join again, while the peers drop the node's
old members when they see the old scope go and send their own members to the
new scope, so that the memberships of the other nodes come back at once. If
services crash more than ``KERNEL_MAX_RESTARTS`` times within
``KERNEL_MAX_SECONDS``, the kernel gives up: as a BEAM node halts when its
kernel application exits, the node then shuts down, with a CRITICAL log
record that says why.

The kernel runs under a small process that is not linked to any user
process; it lives as long as the node.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs
import trio
from beamlet.actors import (
    Down,
    ExitSignal,
    From,
    Pid,
    demonitor,
    monitor,
    receive,
    reply,
    self_pid,
    send,
    spawn,
    trap_exits,
)
from beamlet.actors.lowlevel import BadInputLog, Call, Node, current_node
from beamlet.supervisors import ChildSpec, Supervisor, worker

from ._system import bad_request

__all__ = [
    "DISCOVERY",
    "KERNEL_MAX_RESTARTS",
    "KERNEL_MAX_SECONDS",
    "KERNEL_SUP",
    "kernel_children",
    "start_kernel",
]

logger = logging.getLogger("beamlet.cluster")

#: The registered name of the kernel supervisor.
KERNEL_SUP = "beamlet_kernel_sup"

#: The registered name of the process that runs the discovery strategies.
DISCOVERY = "beamlet_discovery"

#: The kernel's restart intensity: past this many restarts of its services
#: within ``KERNEL_MAX_SECONDS``, the kernel gives up and the node shuts down.
KERNEL_MAX_RESTARTS = 10
KERNEL_MAX_SECONDS = 60.0


@attrs.frozen
class _Started:
    holder: Pid
    sup: Pid


async def _discovery(strategies: tuple[Any, ...]) -> None:
    """Run every discovery strategy. It expects no message: a call gets an error
    reply, anything else is dropped (and logged, rate-limited)."""
    from ._api import distribution

    dist = distribution()
    bad_input = BadInputLog(DISCOVERY, logger)
    async with trio.open_nursery() as nursery:
        for strategy in strategies:
            nursery.start_soon(strategy.run, dist)
        while True:
            msg = await receive()
            if type(msg) is Call and type(msg.caller) is From:
                bad_input.report("call", msg.request)
                reply(msg.caller, bad_request(msg.request))
            else:
                bad_input.report("message", msg, "unexpected")


def kernel_children(discovery: tuple[Any, ...] = ()) -> list[ChildSpec]:
    """The kernel's child specs: the rpc server, the default pg scope, discovery, introspection."""
    from . import introspect, pg
    from ._rpc import child_spec as rpc_child_spec

    return [
        ChildSpec.coerce(rpc_child_spec()),
        ChildSpec.coerce(pg.child_spec()),
        worker(_discovery, tuple(discovery), id="discovery", name=DISCOVERY),
        ChildSpec.coerce(introspect.child_spec()),
    ]


async def _kernel(parent: Pid, discovery: tuple[Any, ...]) -> None:
    """Hold the kernel supervisor; if it gives up, shut the node down."""
    trap_exits(True)
    sup = await Supervisor.start_link(
        kernel_children(discovery),
        strategy="one_for_one",
        max_restarts=KERNEL_MAX_RESTARTS,
        max_seconds=KERNEL_MAX_SECONDS,
        name=KERNEL_SUP,
    )
    assert sup is not None
    send(parent, _Started(self_pid(), sup))
    while True:
        msg = await receive()
        if type(msg) is ExitSignal and msg.pid == sup:
            node = current_node()
            logger.critical(
                "the kernel of %s exited (%r): the node shuts down",
                node.name,
                msg.reason,
                extra={"beamlet_reason": msg.reason},
            )
            node.shutdown()
            await trio.sleep_forever()


async def start_kernel(node: Node, discovery: tuple[Any, ...] = ()) -> Pid:
    """Start the kernel supervision tree on ``node`` (``start_distribution`` does).

    Returns:
        The pid of the kernel supervisor, registered as ``KERNEL_SUP``.

    Raises:
        RuntimeError: a service failed to start.
    """
    result: Pid = await node.run(_start, tuple(discovery))
    return result


async def _start(discovery: tuple[Any, ...]) -> Pid:
    holder = spawn(_kernel, self_pid(), discovery)
    ref = monitor(holder)

    def done(msg: Any) -> bool:
        return (type(msg) is _Started and msg.holder == holder) or (
            type(msg) is Down and msg.ref == ref
        )

    msg = await receive(done)
    if type(msg) is Down:
        raise RuntimeError(f"the kernel failed to start: {msg.reason!r}")
    demonitor(ref, flush=True)
    sup: Pid = msg.sup
    return sup
