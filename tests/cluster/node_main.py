"""A beamlet node in its own OS process, driven over stdin and reporting on stdout.

Usage: ``python node_main.py NAME COOKIE [SEED ...]``; the environment
variable ``BEAMLET_TEST_TICKTIME`` sets the ticktime (15 s by default), and
``BEAMLET_TEST_NOFILE`` the limit of open file descriptors (``RLIMIT_NOFILE``).

The node prints one JSON object per line: first ``{"event": "ready", "name":
..., "address": ...}``, then what it sees (``nodeup``, ``nodedown``,
``received``, ``exit``, ``down``, ``pg``). It reads one JSON command per line
from stdin:

- ``{"cmd": "nodes"}``: print ``{"event": "nodes", "nodes": [...]}``;
- ``{"cmd": "send", "name": N, "node": M, "msg": X}``: ``send((N, M), X)``;
- ``{"cmd": "watch", "name": N, "node": M}``: link to and monitor the process
  registered as N on node M (the watcher traps exits);
- ``{"cmd": "join", "group": G}``: start a process that joins pg group G;
- ``{"cmd": "watch_group", "group": G}``: report the group's changes;
- ``{"cmd": "reply", "pid": [N, I, C], "ref": [N, I, C], "value": X}``:
  ``send_reply(Pid(N, I, C), Ref(N, I, C), X)`` (a forgery, for the tests of
  replies from the wrong node), then print ``{"event": "replied"}``;
- ``{"cmd": "quit"}``: stop the node.

Its ``ctl`` GenServer answers ``("whereis", name)`` and ``("members", group)``
calls from other nodes, and it exports ``node_main.sleeper`` (an async
function that sleeps forever) for ``spawn_on`` and remote ``start_child``, and
``node_main.echo_after`` (returns its value after a delay) for ``rpc``.
A supervisor registered as ``app_sup`` runs one worker, ``holder``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

import trio
from beamlet.actors import (
    Down,
    ExitSignal,
    GenServer,
    Pid,
    Ref,
    call,
    link,
    monitor,
    receive,
    send,
    spawn,
    trap_exits,
    whereis,
)
from beamlet.actors.lowlevel import send_reply
from beamlet.cluster import (
    NodeDown,
    NodeUp,
    distribution,
    export,
    listen_address,
    node_name,
    nodes,
    pg,
    run,
)
from beamlet.supervisors import Supervisor, worker


def emit(**event: Any) -> None:
    print(json.dumps(event, default=repr), flush=True)


class Control(GenServer):
    async def handle_call(self, request: Any, caller: Any) -> Any:
        if request[0] == "whereis":
            return whereis(request[1])
        if request[0] == "members":
            return pg.members(request[1])
        return None


async def sink() -> None:
    while True:
        emit(event="received", msg=await receive())


@export(name="node_main.sleeper")
async def sleeper() -> None:
    await trio.sleep_forever()


@export(name="node_main.echo_after")
async def echo_after(delay: float, value: Any) -> Any:
    await trio.sleep(delay)
    return value


async def holder() -> None:
    await trio.sleep_forever()


async def member(group: str) -> None:
    await pg.join(group)
    await trio.sleep_forever()


async def watcher() -> None:
    trap_exits(True)
    while True:
        msg = await receive()
        if isinstance(msg, NodeUp):
            emit(event="nodeup", node=msg.node)
        elif isinstance(msg, NodeDown):
            emit(event="nodedown", node=msg.node, reason=msg.reason)
        elif isinstance(msg, ExitSignal):
            emit(event="exit", node=msg.pid.node, reason=msg.reason)
        elif isinstance(msg, Down):
            emit(event="down", node=msg.pid.node, reason=msg.reason)
        elif isinstance(msg, pg.GroupChange):
            emit(event="pg", kind=msg.kind, group=msg.group, nodes=[p.node for p in msg.pids])
        elif msg[0] == "watch":
            pid = await call(("ctl", msg[2]), ("whereis", msg[1]))
            link(pid)
            monitor(pid)
            emit(event="watching", node=pid.node)
        elif msg[0] == "watch_group":
            _ref, members = await pg.monitor(msg[1])
            emit(event="pg", kind="current", group=msg[1], nodes=[p.node for p in members])


async def main() -> None:
    await Control.start(name="ctl")
    spawn(sink, name="sink")
    await Supervisor.start_link([worker(holder, id="holder", name="holder")], name="app_sup")
    watching = spawn(watcher, name="watcher")
    # Subscribe the watcher now: the seeds may connect before it runs. The
    # nodes already up are in the ready line; the others come as nodeup.
    distribution().monitor_nodes(watching, True)
    emit(event="ready", name=node_name(), address=listen_address(), nodes=nodes())
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    buffer = b""
    async for chunk in stdin:
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            command = json.loads(line)
            cmd = command["cmd"]
            if cmd == "nodes":
                emit(event="nodes", nodes=nodes())
            elif cmd == "send":
                send((command["name"], command["node"]), command["msg"])
            elif cmd == "watch":
                send(watching, ("watch", command["name"], command["node"]))
            elif cmd == "join":
                spawn(member, command["group"])
            elif cmd == "watch_group":
                send(watching, ("watch_group", command["group"]))
            elif cmd == "reply":
                send_reply(Pid(*command["pid"]), Ref(*command["ref"]), command["value"])
                emit(event="replied")
            elif cmd == "quit":
                return


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(relativeCreated)d %(name)s %(levelname)s %(message)s"
    )
    name, cookie, *seeds = sys.argv[1:]
    if "BEAMLET_TEST_NOFILE" in os.environ:
        import resource

        limit = int(os.environ["BEAMLET_TEST_NOFILE"])
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    ticktime = float(os.environ.get("BEAMLET_TEST_TICKTIME", "15"))
    run(
        main,
        name=name,
        cookie=cookie,
        port=0,
        seeds=seeds,
        ticktime=ticktime,
        watchdog_threshold=None,
    )
