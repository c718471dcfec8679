"""The PubSub guide's examples run, and the guide shows them as they are.

(The chat example, ``pubsub_chat.py``, runs as OS processes in test_real_cluster.py.)
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from beamlet.apps.pubsub.testing import CHECKS
from docs_checks import DOCS, EXAMPLES, check_guide_shows_examples, run_python
from redis_server import RedisServer


def run_example(name: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``docs/examples/NAME`` in its own interpreter; check that it exits 0."""
    return run_python([str(EXAMPLES / name)], cwd, env=env)


def test_the_basics_example_runs(tmp_path: Path) -> None:
    result = run_example("pubsub_basics.py", tmp_path)
    assert "b got: ['goal!', 'for b', 'SHOUT']" in result.stdout
    assert "dropped for the slow subscriber: 900" in result.stdout


def test_the_redis_example_runs_against_a_real_redis_server(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    result = run_example("pubsub_redis.py", tmp_path, REDIS_URL=redis_server.url)
    assert result.stdout.splitlines() == [
        "web-2 got: [('ann', 'hello, everyone'), ('ann', 'hello, web-2')]",
        "web-1: Redis up: 1 not published: 0",
    ], result.stdout
    assert "blocked the event loop" not in result.stderr, result.stderr


def test_the_conformance_example_runs_every_check(tmp_path: Path) -> None:
    result = run_example("pubsub_conformance.py", tmp_path)
    assert result.stdout == f"the cluster adapter passes: {', '.join(CHECKS)}\n"
    assert "outage" in CHECKS


def test_guide_shows_every_example_as_it_is() -> None:
    check_guide_shows_examples(DOCS / "pubsub.md", EXAMPLES.glob("pubsub_*.py"))
