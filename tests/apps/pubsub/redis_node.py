"""A PubSub node in its own OS process, reaching other nodes only through Redis.

Usage: ``python redis_node.py NODE_NAME REDIS_URL``. The node is not
distributed at all (no listener, no beamlet connection to any node): the
PubSub ``"chat"`` runs the Redis adapter with ``node_name=NODE_NAME``.

It prints one JSON object per line: ``{"event": "ready"}`` once the PubSub
has started, then ``{"event": "got", "msg": ...}`` for each message its
subscriber to the topic ``"room"`` receives. It reads one JSON command per
line from stdin:

- ``{"cmd": "broadcast", "msg": X}``: ``broadcast("chat", "room", X)``;
- ``{"cmd": "direct", "node": N, "msg": X}``: ``direct_broadcast(N, "chat", "room", X)``;
- ``{"cmd": "stats"}``: print ``{"event": "stats", "stats": stats("chat")}``;
- ``{"cmd": "quit"}``: stop.

Messages are sent as tuples (JSON lists become tuples), and printed as lists.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import trio
from beamlet.actors import receive, run, self_pid, send, spawn
from beamlet.apps.pubsub import PubSub, broadcast, direct_broadcast, stats, subscribe


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def as_message(value: Any) -> Any:
    return tuple(as_message(v) for v in value) if isinstance(value, list) else value


async def subscriber(parent: Any) -> None:
    subscribe("chat", "room")
    send(parent, "subscribed")
    while True:
        emit({"event": "got", "msg": await receive()})


async def main(node_name: str, url: str) -> None:
    await PubSub.start_link(
        "chat",
        adapter="redis",
        node_name=node_name,
        redis={"url": url, "reconnect_initial": 0.01, "reconnect_max": 0.05},
    )
    spawn(subscriber, self_pid())
    await receive(lambda m: m == "subscribed")
    emit({"event": "ready"})
    stdin = trio.lowlevel.FdStream(os.dup(0))
    buffer = b""
    while True:
        chunk = await stdin.receive_some(65536)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            command = json.loads(line)
            if command["cmd"] == "broadcast":
                broadcast("chat", "room", as_message(command["msg"]))
            elif command["cmd"] == "direct":
                direct_broadcast(command["node"], "chat", "room", as_message(command["msg"]))
            elif command["cmd"] == "stats":
                emit({"event": "stats", "stats": stats("chat")})
            elif command["cmd"] == "quit":
                return


if __name__ == "__main__":
    run(main, sys.argv[1], sys.argv[2], watchdog_threshold=None)
