"""bench/pool.py runs to the end at a tiny size and prints every ratio (figures not checked)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.timeout(120)
def test_pool_benchmark_prints_every_ratio() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "pool.py"), "--quick", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=110,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for figure in (
        "checkout + checkin, 1 caller / Semaphore",
        "checkout + checkin, 8 callers, pool of 4 / Semaphore",
        "jobs through enqueue / TaskSupervisor.start_child",
        "run_cpu batch",
        "run_cpu tiny call / trio_parallel.run_sync",
        "slowest call while run_cpu runs / idle",
        "median call while run_cpu runs / idle",
        "slowest call, same work inline / via run_cpu",
    ):
        assert any(line.startswith(figure) and "x (range" in line for line in lines), done.stdout
