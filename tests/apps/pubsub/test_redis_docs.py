"""The Redis adapter's example in the PubSub guide runs against a real redis-server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from redis_server import RedisServer

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "pubsub_redis.py"


def test_the_redis_example_runs(redis_server: RedisServer, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "REDIS_URL": redis_server.url},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "web-2 got: [('ann', 'hello, everyone'), ('ann', 'hello, web-2')]",
        "web-1: Redis up: 1 not published: 0",
    ], result.stdout
    assert "blocked the event loop" not in result.stderr, result.stderr
