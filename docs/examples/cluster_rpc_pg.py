"""rpc to an exported function, and a process group across nodes."""

import trio
import trio.testing
from beamlet.actors import receive, self_pid, send
from beamlet.cluster import RpcError, export, pg, rpc
from beamlet.cluster.simulation import simulated_cluster


@export(name="add")
def add(x: int, y: int) -> int:
    return x + y


async def worker() -> None:
    await pg.join("workers")
    while True:
        sender, job = await receive()
        send(sender, ("done", job))


async def main() -> None:
    async with simulated_cluster(["a", "b"]) as sim:

        async def client() -> None:
            print("add on b:", await rpc("b@b", "add", 2, 3))
            try:
                await rpc("b@b", "os.system", "true")
            except RpcError as exc:
                print("refused:", exc.reason)

            ref, members = await pg.monitor("workers")  # GroupChange messages follow
            while len(members) < 2:
                await receive(lambda m: isinstance(m, pg.GroupChange) and m.ref == ref)
                members = pg.members("workers")
            for pid in pg.members("workers"):
                send(pid, (self_pid(), pid.node))
            print(sorted([(await receive())[1] for _ in range(2)]))

        sim.spawn("a", worker)
        sim.spawn("b", worker)
        await sim.run("a", client)


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
