"""Tasks: run work in its own process and collect the result."""

import trio
from beamlet.actors import async_stream, async_task, run


async def fetch(n):
    await trio.sleep(0.01 * (n % 3))  # stands for some I/O
    return n * n


async def main():
    # One task: linked to and monitored by the caller.
    task = async_task(fetch, 7)
    assert await task.join(timeout=5) == 49

    # poll returns None while the task is still running.
    task = async_task(fetch, 2)
    assert await task.poll() is None
    assert await task.poll(timeout=1) == 4

    # Many tasks, at most 4 at a time, results in the order of the inputs.
    results = [r async for r in async_stream(fetch, range(10), max_concurrency=4)]
    assert results == [n * n for n in range(10)]

    # Or in the order they finish.
    unordered = [r async for r in async_stream(fetch, range(10), ordered=False)]
    assert sorted(unordered) == results


run(main)
