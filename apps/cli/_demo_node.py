"""One node of ``beamlet demo``: a chat service, run as its own OS process.

``python -m beamlet.apps.cli._demo_node --name NAME@HOST --cookie-file PATH
--port PORT --seeds ... --rooms N --db-node NAME`` boots this tree with the
application runner (SIGTERM: graceful shutdown, exit 0; a supervisor that
gives up: exit 1):

```
root (one_for_one)
├── demo_pubsub     PubSub (cluster adapter): chat messages, presence and cache traffic
├── demo_presence   Presence: who is in which room, cluster-wide
├── demo_profiles   Cache of user profiles, invalidated on every node when one changes
├── demo_mailer     Pool of Mailer workers ("sending" emails)
├── demo_db         the profile "database" (the one on --db-node is used)
├── listeners       one probe per room: counts what it receives, per publisher
├── demo_users      DynamicSupervisor of the simulated users
└── demo_control    what the demo's orchestrator talks to (start, stop, stats)
```

A user joins a room (``track`` in Presence, ``subscribe`` in PubSub), then,
until told to stop: posts numbered messages to its room, reads other users'
profiles through the cache (a miss asks the database on the db node), now
and then changes its own profile (the cache entry is invalidated on every
node), hands an "email" to the pool, and, rarely, crashes on purpose, so
that its supervisor restarts it.

The listeners count, per publisher, the first and last sequence numbers
seen and how many arrived: a gap is a lost message. The orchestrator
(``_demo``) adds up what every node reports; everything it reads comes
through ``demo_control`` calls over the distribution.
"""

from __future__ import annotations

import argparse
import logging
import random
import secrets
import sys
from functools import partial
from typing import Any

from beamlet.actors import (
    GenServer,
    Pid,
    call,
    receive,
    self_pid,
    send_after,
)
from beamlet.apps.cache import Cache, lookup as lookup_cache
from beamlet.apps.pool import Pool, transaction
from beamlet.apps.presence import Presence, PresenceDiff, list_presences, track
from beamlet.apps.pubsub import PubSub, broadcast, subscribe
from beamlet.cluster import node_name, nodes, open_node
from beamlet.supervisors import (
    ChildSpec,
    DynamicSupervisor,
    Supervisor,
    run_application,
    worker,
)

from ._options import parse_seeds, read_cookie

__all__ = ["main"]

logger = logging.getLogger("beamlet.demo")

PUBSUB = "demo_pubsub"
PRESENCE = "demo_presence"
CACHE = "demo_profiles"
POOL = "demo_mailer"
DB = "demo_db"
USERS = "demo_users"
CONTROL = "demo_control"

#: This incarnation of the node (a node restarted under the same name gets another).
BOOT = secrets.token_hex(4)

#: Profiles users read (keys ``0 .. PROFILES - 1``).
PROFILES = 40


class Metrics:
    """This node's counters (one node per OS process: a module-level record is its own)."""

    def __init__(self) -> None:
        self.posting = False
        self.posted = 0
        #: Messages published, per publisher pid: (its room, its last sequence number).
        self.published: dict[Pid, tuple[str, int]] = {}
        #: Messages received by users and by listeners.
        self.received = 0
        #: Per (room, publisher): [first sequence seen, last, how many].
        self.heard: dict[tuple[str, Pid], list[int]] = {}
        self.user_starts = 0
        self.users_started = 0  # asked for by the orchestrator
        self.crashes = 0
        self.emails = 0
        self.profile_reads = 0
        self.profile_updates = 0
        self.diffs = 0


METRICS = Metrics()


# -- the profile "database" and the mailer -----------------------------------------------


class Database(GenServer):
    """Profiles and their versions: the slow, authoritative store behind the cache."""

    async def init(self) -> None:
        self.versions: dict[int, int] = {}

    async def handle_call(self, request: Any, caller: Any) -> Any:
        op, key = request
        if op == "bump":
            self.versions[key] = self.versions.get(key, 0) + 1
        return {"id": key, "version": self.versions.get(key, 0), "bio": f"user {key}"}


class Mailer(GenServer):
    """A pool worker that "sends" an email (a short wait, as for an SMTP server)."""

    async def init(self) -> None:
        self.sent = 0

    async def handle_call(self, request: Any, caller: Any) -> Any:
        await _sleep(0.002)
        self.sent += 1
        return "sent"


async def _sleep(seconds: float) -> None:
    import trio

    await trio.sleep(seconds)


# -- users and listeners -----------------------------------------------------------------


async def _load_profile(db_node: str, key: int) -> Any:
    return await call((DB, db_node), ("get", key), timeout=5.0)


async def _send_email(pid: Pid, uid: int) -> Any:
    return await call(pid, ("email", uid), timeout=5.0)


async def user(uid: int, room: str, interval: float, crash_rate: float, db_node: str) -> None:
    """One simulated chat user (see the module docstring)."""
    me = self_pid()
    METRICS.user_starts += 1
    rng = random.Random()
    subscribe(PUBSUB, room)
    await track(PRESENCE, me, room, uid, {"node": node_name(), "boot": BOOT})
    cache = lookup_cache(CACHE)
    seq = 0
    send_after(rng.uniform(0, interval), me, "tick")
    while True:
        msg = await receive()
        if type(msg) is tuple and msg[0] == "chat":
            METRICS.received += 1
            continue
        if msg != "tick":
            continue
        send_after(interval, me, "tick")
        if not METRICS.posting:
            continue
        seq += 1
        METRICS.published[me] = (room, seq)
        METRICS.posted += 1
        broadcast(PUBSUB, room, ("chat", me, seq, uid))
        key = rng.randrange(PROFILES)
        await cache.fetch(key, _load_profile, db_node, key)
        METRICS.profile_reads += 1
        if rng.random() < 0.05:
            key = rng.randrange(PROFILES)
            await call((DB, db_node), ("bump", key), timeout=5.0)
            cache.delete(key)  # every node drops its copy
            METRICS.profile_updates += 1
        if rng.random() < 0.2:
            await transaction(POOL, _send_email, uid, timeout=5.0)
            METRICS.emails += 1
        if rng.random() < crash_rate:
            METRICS.crashes += 1
            raise RuntimeError(f"user {uid} crashed on purpose (the demo's fault injection)")


async def listener(room: str) -> None:
    """Count, per publisher, what reaches this node for ``room`` (gaps are losses)."""
    subscribe(PUBSUB, room)
    heard = METRICS.heard
    while True:
        msg = await receive()
        if type(msg) is tuple and msg[0] == "chat":
            _tag, pid, seq, _uid = msg
            METRICS.received += 1
            entry = heard.get((room, pid))
            if entry is None:
                heard[(room, pid)] = [seq, seq, 1]
            else:
                entry[1] = seq
                entry[2] += 1
        elif type(msg) is PresenceDiff:
            METRICS.diffs += 1


# -- control ---------------------------------------------------------------------------


def _presence_view(rooms: list[str]) -> list[tuple[str, Any, str]]:
    view = []
    for room in rooms:
        for key, metas in list_presences(PRESENCE, room).items():
            for meta in metas:
                view.append((room, key, meta.get("boot", "?")))
    return sorted(view)


class Control(GenServer):
    """What the orchestrator asks: start users, stop posting, the node's figures."""

    async def init(self, rooms: list[str], db_node: str) -> None:
        self.rooms = rooms
        self.db_node = db_node

    async def handle_call(self, request: Any, caller: Any) -> Any:
        tag = request[0]
        if tag == "start":
            _tag, uids, interval, crash_rate = request
            METRICS.posting = True
            for uid in uids:
                room = self.rooms[uid % len(self.rooms)]
                spec = worker(user, uid, room, interval, crash_rate, self.db_node, id=("user", uid))
                await DynamicSupervisor.start_child(USERS, spec)
            METRICS.users_started += len(uids)
            return "ok"
        if tag == "stop":
            METRICS.posting = False
            return "ok"
        if tag == "stats":
            return await self._stats()
        if tag == "final":
            return {
                "published": dict(METRICS.published),
                "heard": [(room, pid, *entry) for (room, pid), entry in METRICS.heard.items()],
            }
        return ("error", "unknown request")

    async def _stats(self) -> dict[str, Any]:
        stats = lookup_cache(CACHE).stats()
        users = (await DynamicSupervisor.count_children(USERS)).active
        return {
            "name": node_name(),
            "boot": BOOT,
            "nodes": nodes(),
            "users": users,
            "users_started": METRICS.users_started,
            "posted": METRICS.posted,
            "received": METRICS.received,
            "presences": _presence_view(self.rooms),
            "user_starts": METRICS.user_starts,
            "crashes": METRICS.crashes,
            "emails": METRICS.emails,
            "profile_reads": METRICS.profile_reads,
            "profile_updates": METRICS.profile_updates,
            "cache_hits": stats.hits,
            "cache_misses": stats.misses,
            "invalidations_received": stats.invalidations_received,
        }


def children(rooms: list[str], db_node: str) -> list[Any]:
    """The node's tree (see the module docstring)."""
    return [
        PubSub.child_spec(PUBSUB),
        Presence.child_spec(PRESENCE, pubsub=PUBSUB, broadcast_period=0.2, down_period=2.5),
        Cache.child_spec(CACHE, max_size=1000, ttl=30.0, pubsub=PUBSUB),
        Pool.child_spec(POOL, worker=Mailer, size=4, max_overflow=2),
        Database.child_spec(name=DB, id="db"),
        ChildSpec(
            "listeners",
            Supervisor.start_link,
            args=([worker(listener, room, id=("listener", room)) for room in rooms],),
            type="supervisor",
        ),
        ChildSpec(
            "users",
            partial(DynamicSupervisor.start_link, name=USERS, max_restarts=1000, max_seconds=1.0),
            type="supervisor",
        ),
        Control.child_spec(rooms, db_node, name=CONTROL, id="control"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="beamlet-demo-node")
    parser.add_argument("--name", required=True)
    parser.add_argument("--cookie-file", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seeds", default="")
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--db-node", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    rooms = [f"room:{i}" for i in range(args.rooms)]
    try:
        return run_application(
            children(rooms, args.db_node),
            node=partial(
                open_node,
                args.name,
                cookie=read_cookie(args.cookie_file),
                port=args.port,
                seeds=parse_seeds(args.seeds),
                ticktime=4.0,
                seed_interval=0.5,
            ),
            max_restarts=10,
            max_seconds=5.0,
            log_level=None,
        )
    except OSError as exc:  # its port taken, most likely: one line, the orchestrator shows it
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
