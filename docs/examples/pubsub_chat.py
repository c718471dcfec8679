"""A chat room across nodes: each node is an OS process; type a line to say it.

    python pubsub_chat.py alice@127.0.0.1 --port 4001
    python pubsub_chat.py bob@127.0.0.1 --seed 127.0.0.1:4001

Every node starts the same PubSub; a member process on each node subscribes
to the room and prints what the others say. A line typed on one node is
broadcast from that member, so it reaches every other node once, and not
the node that said it. "/who" lists the nodes; "/quit" (or end of input) leaves.
"""

import argparse
import os
import sys

import trio
from beamlet.actors import receive, self_pid, send, spawn
from beamlet.apps.pubsub import PubSub, broadcast_from, subscribe
from beamlet.cluster import listen_address, node_name, nodes, run

ROOM = "room:lobby"
COOKIE = os.environ.get("BEAMLET_COOKIE", "chat-example-cookie-0123456789abcdef")


def say(line: str) -> None:
    print(line, flush=True)


async def member(parent: object) -> None:
    """This node's member of the room: prints what the others say."""
    subscribe("chat", ROOM)
    send(parent, "subscribed")
    while True:
        kind, speaker, text = await receive()
        if kind == "say":
            say(f"<{speaker}> {text}")


async def main() -> None:
    await PubSub.start_link("chat")
    me = spawn(member, self_pid())
    await receive()  # "subscribed"
    say(f"ready {node_name()} {listen_address()}")
    lines = trio.wrap_file(sys.stdin)
    async for line in lines:
        text = line.rstrip("\n")
        if text == "/quit":
            break
        if text == "/who":
            say("nodes: " + " ".join([node_name(), *nodes()]))
        elif text:
            broadcast_from("chat", me, ROOM, ("say", node_name(), text))
    say(f"bye from {node_name()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="this node's name, like alice@127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", action="append", default=[], help="host:port of a member")
    args = parser.parse_args()
    run(main, name=args.name, cookie=COOKIE, port=args.port, seeds=args.seed)
