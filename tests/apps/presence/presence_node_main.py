"""A node with a PubSub and a presence in its own OS process, driven over stdin.

Usage: ``python presence_node_main.py NAME COOKIE [SEED ...]``. It prints one
JSON object per line: ``{"event": "ready", "name": ..., "address": ...}``
first, then one answer per command read from stdin (one JSON object a line):

- ``{"cmd": "track", "key": K}``: a new process tracks itself under
  ``"lobby"`` as K; answers ``{"event": "tracked", "key": K}``;
- ``{"cmd": "list"}``: answers ``{"event": "list", "keys": [...]}`` (sorted);
- ``{"cmd": "quit"}``: stops the node.

Timings are short (heartbeats every 0.2 s, down after 1.5 s of silence), for
tests. With ``PRESENCE_IDLE=1`` in the environment an idle shard heartbeats
only every 12.2 s (``max_silent_periods`` 60; down after 30 s,
forgotten after 60 s).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import trio
from beamlet.actors import self_pid, spawn
from beamlet.apps.presence import Presence, list_presences, track
from beamlet.apps.pubsub import PubSub
from beamlet.cluster import listen_address, node_name, run
from beamlet.supervisors import Supervisor

OPTIONS = {
    "broadcast_period": 0.2,
    "max_silent_periods": 2,
    "down_period": 1.5,
    "permdown_period": 30.0,
}

if os.environ.get("PRESENCE_IDLE") == "1":
    OPTIONS = {**OPTIONS, "max_silent_periods": 60, "down_period": 30.0, "permdown_period": 60.0}


def emit(**event: Any) -> None:
    print(json.dumps(event), flush=True)


async def user(key: str) -> None:
    await track("pr", self_pid(), "lobby", key, {"node": node_name()})
    emit(event="tracked", key=key)
    await trio.sleep_forever()


async def main() -> None:
    await Supervisor.start_link(
        [PubSub.child_spec("ps"), Presence.child_spec("pr", pubsub="ps", **OPTIONS)],
        strategy="rest_for_one",
    )
    emit(event="ready", name=node_name(), address=listen_address())
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    buffer = b""
    async for chunk in stdin:
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            command = json.loads(line)
            if command["cmd"] == "track":
                spawn(user, command["key"])
            elif command["cmd"] == "list":
                emit(event="list", keys=sorted(list_presences("pr", "lobby")))
            elif command["cmd"] == "quit":
                return


if __name__ == "__main__":
    name, cookie, *seeds = sys.argv[1:]
    run(main, name=name, cookie=cookie, port=0, seeds=seeds, watchdog_threshold=None)
