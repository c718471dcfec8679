"""A peer that holds the cookie sends a pool and a jobs runner what only they may send themselves.

A jobs runner's timers (the timeout of an attempt, the retry of a job) are
messages no other node can produce: a ``("timeout", ref)`` tuple for every
ref a peer can guess does not kill a running job. A forged ``ExitSignal``
from the parent of a pool or a runner does not stop it. Both keep serving.
"""

from __future__ import annotations

from typing import Any

import trio
from beamlet.actors import ExitSignal, GenServer, Pid, Ref, send, whereis
from beamlet.apps.pool import Jobs, Pool, enqueue, status
from beamlet.cluster.simulation import simulated_cluster
from hostile import forge_send


class Worker(GenServer):
    async def handle_call(self, request: Any, caller: Any) -> Any:
        return request


async def _whereis(name: str) -> Pid | None:
    return whereis(name)


async def test_forged_timers_and_exit_signals_neither_kill_jobs_nor_stop_the_services(
    autojump_clock: Any,
) -> None:
    log: list[str] = []

    async def slow() -> None:
        log.append("start")
        await trio.sleep(10)
        log.append("done")

    async def services(ready: trio.Event) -> None:
        await Jobs.start_link("jobs", queues={"q": 1}, jitter=0.0)
        await Pool.start_link("pool", worker=Worker, size=2)
        ready.set()
        await trio.sleep_forever()

    async with simulated_cluster(["a", "b"]) as sim:
        ready = trio.Event()
        parent = sim.spawn("a", services, ready)
        await ready.wait()
        jobs = await sim.run("a", _whereis, "jobs")
        pool = await sim.run("a", _whereis, "pool")

        async def submit() -> int:
            return await enqueue("jobs", "q", slow, max_attempts=2, backoff=1.0)

        await sim.run("a", submit)
        await trio.sleep(1)
        assert log == ["start"]

        async def attack() -> None:
            for i in range(1, 5000):  # refs are numbered: guess them all
                ref = Ref("a@a", i, parent.creation)
                send(("jobs", "a@a"), ("timeout", ref))
                send(("jobs", "a@a"), ("retry", i))
            for name, pid in (("jobs", jobs), ("pool", pool)):
                forge_send((name, "a@a"), ExitSignal(parent, "shutdown"))
                forge_send(pid, ExitSignal(parent, "shutdown"))

        await sim.run("b", attack)
        await trio.sleep(20)
        assert log == ["start", "done"]  # one attempt, not killed
        assert await sim.run("a", _whereis, "jobs") == jobs
        assert await sim.run("a", _whereis, "pool") == pool

        async def pool_status() -> Any:
            return await status(("pool", "a@a"))

        assert (await sim.run("b", pool_status)).ready == 2
