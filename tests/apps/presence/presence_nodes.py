"""Presences on the nodes of a simulated cluster, and what their subscribers saw.

Each node runs a PubSub and a presence under one supervisor, and a *viewer*
process subscribed to the topic ``TOPIC``: it applies every ``PresenceDiff``
to a view (ref -> key) and records as an error a join of a ref already shown
or a leave of a ref not shown. The test reads the views directly (all nodes
live in one ``trio.run``).
"""

from __future__ import annotations

from typing import Any

import attrs
import trio
from beamlet.actors import Pid, receive, self_pid, send, send_exit, spawn
from beamlet.apps.presence import Presence, PresenceDiff, list_presences, track
from beamlet.apps.pubsub import PubSub, subscribe
from beamlet.cluster.simulation import SimulatedCluster
from beamlet.supervisors import Supervisor

PS = "ps"
PR = "pr"
TOPIC = "lobby"
# Phoenix's test timings, in seconds.
OPTIONS: dict[str, Any] = {
    "broadcast_period": 1.0,
    "max_silent_periods": 2,
    "down_period": 5.0,
    "permdown_period": 60.0,
}


@attrs.define
class View:
    """What the subscribers of ``TOPIC`` on one node were told."""

    shown: dict[str, Any] = attrs.Factory(dict)  # ref -> key
    joined_at: dict[str, float] = attrs.Factory(dict)  # ref -> last join time
    left_at: dict[str, float] = attrs.Factory(dict)  # ref -> last leave time
    joins: int = 0
    errors: list[str] = attrs.Factory(list)

    def apply(self, diff: PresenceDiff) -> None:
        now = trio.current_time()
        for key, metas in diff.leaves.items():
            for meta in metas:
                if self.shown.pop(meta["ref"], None) is None:
                    self.errors.append(f"leave of {key}/{meta['ref']}, not shown")
                self.left_at[meta["ref"]] = now
        for key, metas in diff.joins.items():
            for meta in metas:
                if meta["ref"] in self.shown:
                    self.errors.append(f"duplicate join of {key}/{meta['ref']}")
                self.shown[meta["ref"]] = key
                self.joined_at[meta["ref"]] = now
                self.joins += 1


async def node_main(view: View, options: dict[str, Any]) -> None:
    """Start the node's PubSub and presence, then keep ``view`` up to date."""
    await Supervisor.start_link(
        [PubSub.child_spec(PS), Presence.child_spec(PR, pubsub=PS, **options)],
        strategy="rest_for_one",
        name="node_sup",
    )
    subscribe(PS, TOPIC)
    while True:
        view.apply(await receive(lambda m: type(m) is PresenceDiff))


async def user(key: str, parent: Pid | None = None, meta: dict[str, Any] | None = None) -> None:
    ref = await track(PR, self_pid(), TOPIC, key, meta or {})
    if parent is not None:
        send(parent, ("tracked", key, ref))
    await trio.sleep_forever()


class Nodes:
    """The presence side of a simulated cluster."""

    def __init__(self, sim: SimulatedCluster, options: dict[str, Any] | None = None) -> None:
        self.sim = sim
        self.options = OPTIONS if options is None else options
        self.views: dict[str, View] = {}
        self.pid_of: dict[str, Pid] = {}

    async def start(self, short: str) -> None:
        """Start the presence of node ``short`` (a fresh view), and wait until it runs."""
        view = self.views[short] = View()
        self.sim.spawn(short, node_main, view, self.options)

        async def running() -> bool:
            try:
                list_presences(PR, TOPIC)
            except LookupError:
                return False
            return True

        while not await self.sim.run(short, running):  # noqa: ASYNC110 - polling what other nodes list
            await trio.sleep(0.001)

    async def track(self, short: str, key: str, meta: dict[str, Any] | None = None) -> str:
        """Spawn a process on ``short`` that tracks itself as ``key``; its ref."""

        async def spawn_and_wait() -> tuple[Pid, str]:
            pid = spawn(user, key, self_pid(), meta)
            msg = await receive(lambda m: type(m) is tuple and m[:2] == ("tracked", key))
            return pid, msg[2]

        pid, ref = await self.sim.run(short, spawn_and_wait)
        self.pid_of[ref] = pid
        return ref

    async def kill(self, ref: str) -> None:
        """Kill the process of the presence ``ref`` (from its own node)."""
        pid = self.pid_of[ref]

        async def kill() -> None:
            send_exit(pid, "kill")

        await self.sim.run(pid.node.partition("@")[0], kill)

    async def listed(self, short: str) -> set[str]:
        """The refs node ``short`` lists under ``TOPIC``."""

        async def refs() -> set[str]:
            return {m["ref"] for metas in list_presences(PR, TOPIC).values() for m in metas}

        return await self.sim.run(short, refs)

    async def wait_listed(self, shorts: str, expected: set[str], timeout: float = 60.0) -> float:
        """Wait until every node of ``shorts`` lists exactly ``expected``; the time taken."""
        start = trio.current_time()
        with trio.fail_after(timeout):
            for short in shorts:
                while await self.listed(short) != expected:  # noqa: ASYNC110 - polling what other nodes list
                    await trio.sleep(0.01)
        return trio.current_time() - start

    async def start_a_and_b(self) -> set[str]:
        """Start the presences of nodes a and b, give them two seconds (two broadcast
        periods of ``OPTIONS``) to see each other, then track alice on a and bob on
        b; their refs, once both nodes list them."""
        for short in "ab":
            await self.start(short)
        await trio.sleep(2)
        refs = {await self.track("a", "alice"), await self.track("b", "bob")}
        await self.wait_listed("ab", refs)
        return refs

    async def check_still_replicating(self, refs: set[str], timeout: float) -> None:
        """Nodes a and b still replicate: carol tracked on a and dave on b are listed
        on both, with ``refs``, within ``timeout``; and no viewer saw a wrong diff."""
        refs = refs | {await self.track("a", "carol"), await self.track("b", "dave")}
        await self.wait_listed("ab", refs, timeout=timeout)
        for short in "ab":
            assert self.views[short].errors == [], (short, self.views[short].errors)
