"""run_cpu: CPU-bound work in worker processes while the node keeps serving."""

import hashlib
import time

import trio
from beamlet.actors import GenServer, call, run
from beamlet.apps.pool import UnpicklableError, run_cpu


def hash_password(password, salt):
    """CPU-bound: about a quarter of a second of SHA-256. Returns the digest
    and the seconds the hashing took."""
    started = time.perf_counter()
    digest = hashlib.pbkdf2_hmac("sha256", password, salt, 300_000).hex()[:16]
    return digest, time.perf_counter() - started


def monthly_report(rows):
    if not rows:
        raise ValueError("no rows for this month")
    return sum(rows) / len(rows)


class Health(GenServer):
    async def handle_call(self, request, caller):
        return "ok"


async def main():
    health = await Health.start_link()

    # Hash three passwords in worker processes, while this process keeps
    # asking the health server and timing its answers.
    async with trio.open_nursery() as nursery:
        results = {}

        async def hash_one(user):
            results[user] = await run_cpu(hash_password, user.encode(), b"pepper")

        for user in ("ada", "grace", "edsger"):
            nursery.start_soon(hash_one, user)
        slowest = 0.0
        while len(results) < 3:
            before = time.perf_counter()
            assert await call(health, "ping") == "ok"
            slowest = max(slowest, time.perf_counter() - before)
            await trio.sleep(0.005)
    for user in sorted(results):
        print(user, results[user][0])
    # Had a hash run in this process, a health call would have waited for
    # all of it: the slowest answer would have taken a hash or more. It took
    # a fraction of the quickest hash instead (both timed in this run, so a
    # busy machine slows both alike).
    quickest = min(seconds for _digest, seconds in results.values())
    print("health answered within half a hash throughout:", slowest < quickest / 2)

    # An exception in the worker comes back as itself.
    try:
        await run_cpu(monthly_report, [])
    except ValueError as exc:
        print("report failed:", exc)
    print("report:", await run_cpu(monthly_report, [3, 4, 5]))

    # What cannot be sent to a worker process is refused before anything is sent.
    try:
        await run_cpu(lambda rows: sum(rows), [1, 2])
    except UnpicklableError as exc:
        print("refused:", exc.what)

    # Cancelling the caller kills the work (kill_on_cancel=True, the default).
    with trio.move_on_after(0.2) as scope:
        await run_cpu(time.sleep, 30)
    print("cancelled:", scope.cancelled_caught)


if __name__ == "__main__":  # worker processes import this file: keep the guard
    run(main)
