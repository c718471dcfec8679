"""The benchmarks in ``bench/`` run to the end and print every figure.

Smoke runs at small sizes: they check that each benchmark still works against
the current code (the figures are not checked; benchmarks report timings,
tests do not assert them).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_bench(*args: str, timeout: float) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCH / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.timeout(120)
def test_local_benchmark_prints_every_ratio() -> None:
    out = run_bench("local.py", "--quick", timeout=110)
    for figure in (
        "one-way",
        "ping-pong vs send_nowait",
        "ping-pong vs unbuffered",
        "GenServer call vs send_nowait",
        "GenServer call vs unbuffered",
        "spawn + exit, one at a time",
        "spawn + exit, burst",
        "longest loop stall",
        "memory per idle",
    ):
        assert any(line.startswith(figure) and "x " in line for line in out.splitlines()), out


@pytest.mark.timeout(150)
def test_remote_benchmark_prints_every_ratio() -> None:
    out = run_bench("remote.py", "--quick", "--rounds", "1", timeout=140)
    for figure in (
        "remote one-way / raw batched msgpack",
        "remote ping-pong / raw Trio TCP",
        "round trip: beamlet",
        "remote call / remote ping-pong",
    ):
        assert figure in out, out
    if "Redis baseline skipped" not in out:
        assert "remote one-way / Redis PUBLISH->subscriber" in out, out


@pytest.mark.timeout(120)
def test_supervision_benchmark_prints_every_figure() -> None:
    out = run_bench("supervision.py", "--runs", "1", "--scale", "0.05", timeout=110)
    assert "restarts" in out and "start_child" in out, out


@pytest.mark.timeout(120)
def test_presence_benchmark_prints_every_figure() -> None:
    out = run_bench("presence.py", "--quick", "--presences", "90", "--idle", "1", timeout=110)
    for figure in (
        "every node lists all 90 after",
        "every node lists none after their exit",
        "idle wire, per node pair",
        "SIGKILL -> its presences gone",
    ):
        assert figure in out, out
    if "Redis baseline skipped" not in out:
        for figure in ("writes per second", "worst-case staleness", "staleness: presence / Redis"):
            assert figure in out, out


@pytest.mark.timeout(150)
def test_cache_benchmark_prints_every_figure() -> None:
    out = run_bench("cache.py", "--quick", timeout=140)
    for figure in (
        "get hit, dict.get",
        "get hit, cachetools.TTLCache.get",
        "get hit, beamlet Cache.get",
        "fetch, 1000 concurrent callers",
        "computations per fetch round: 1",
        "invalidation round trip, two OS processes",
        "get / cachetools.TTLCache.get",
        "fetch 1,000 callers / trio.Event floor",
    ):
        assert figure in out, out
    if "Redis baselines skipped" not in out:
        assert "get vs Redis GET (redis-py)" in out and "get vs Redis GET (coredis)" in out, out


@pytest.mark.timeout(120)
def test_decode_benchmark_prints_every_figure() -> None:
    out = run_bench("decode.py", "--quick", timeout=110)
    lines = out.splitlines()
    for frame, mode in (
        ("colliding set", "whole"),
        ("colliding set", "steps"),
        ("empty maps", "whole"),
        ("empty maps", "steps"),
    ):
        assert any(line.startswith(frame) and f" {mode} " in line for line in lines), out
    assert any(line.startswith("colliding set") and line.endswith("yes") for line in lines), out


@pytest.mark.timeout(150)
def test_pubsub_benchmark_prints_every_ratio() -> None:
    out = run_bench("pubsub.py", "--quick", timeout=140)
    for figure in (
        "local fan-out / raw Trio",
        "cross-node to 1 subscriber",
        "cross-node to 100 subscribers",
    ):
        assert figure in out, out
    if "Redis baselines skipped" not in out:
        for figure in (
            "latency median, beamlet / redis-py",
            "latency median, beamlet / coredis",
            "Redis adapter / coredis pub/sub",
            "Redis adapter / redis-py pub/sub",
        ):
            assert figure in out, out
