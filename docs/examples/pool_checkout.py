"""A pool of connection workers: checkout, transaction, waiting, overflow, deaths."""

import trio
from beamlet.actors import GenServer, call, run, send_exit, spawn
from beamlet.apps.pool import Pool, PoolFullError, checkout, status, transaction


class Connection(GenServer):
    """Stands for a database connection: one query at a time."""

    async def init(self, dsn):
        self.dsn = dsn
        self.queries = 0

    async def handle_call(self, request, caller):
        self.queries += 1
        await trio.sleep(0.01)  # the database's round trip
        return f"{request} -> ok (query {self.queries} on this connection)"


async def report(pool):
    async with checkout(pool) as conn:
        await call(conn, "SELECT count(*) FROM users")
        await trio.sleep(0.5)  # works on the result, holding the connection


async def main():
    await Pool.start_link("db", worker=Connection, worker_args=("pg://db/app",), size=2)

    # Borrow a worker for a block; it comes back however the block ends.
    async with checkout("db") as conn:
        print(await call(conn, "BEGIN"))
        print(await call(conn, "COMMIT"))  # the same connection: a transaction
    print(await status("db"))

    # The same, as a function of the worker.
    print(await transaction("db", call, "SELECT 1"))

    # Both workers busy: the third caller waits its turn (FIFO), or,
    # with block=False, is told at once.
    async with checkout("db"), checkout("db"):
        try:
            async with checkout("db", block=False):
                pass
        except PoolFullError as exc:
            print("refused:", exc)

    # A caller that dies holding a worker gives it back.
    async def careless():
        async with checkout("db"):
            await trio.sleep_forever()

    pid = spawn(careless)
    await trio.sleep(0.1)
    print("while held:", await status("db"))
    send_exit(pid, "kill")
    await trio.sleep(0.1)
    print("after its death:", await status("db"))

    # A pool with overflow grows under load and shrinks back after it.
    await Pool.start_link(
        "burst", worker=Connection, worker_args=("pg://db/app",), size=1, max_overflow=3
    )
    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(report, "burst")
        await trio.sleep(0.1)
        print("under load:", await status("burst"))
    await trio.sleep(0.1)
    print("after it:", await status("burst"))


if __name__ == "__main__":
    run(main)
