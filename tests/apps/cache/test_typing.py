"""The cache's public API type-checks in a user's program: ``cached`` keeps the decorated
function's signature (ParamSpec), and options are keyword parameters a checker knows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

GOOD = """\
from __future__ import annotations

from beamlet.actors import Pid
from beamlet.apps.cache import Cache, CacheStats, NoCache, cached, lookup


@cached("users", ttl=30.0)
async def load_user(user_id: int, *, full: bool = False) -> dict[str, int]:
    return {"id": user_id}


async def main() -> None:
    pid: Pid = await Cache.start_link("users", max_size=10, ttl=5.0, ttl_jitter=0.1)
    users = lookup("users")
    users.put("a", 1, ttl=2.0)
    stats: CacheStats = users.stats()
    user: dict[str, int] = await load_user(1, full=True)
    found = load_user.invalidate(1)
    assert found or not found
    value = await users.fetch("k", load_user, 2)
    nothing = NoCache(None)
    print(pid, stats, user, value, nothing)
"""

BAD = """\
from __future__ import annotations

from beamlet.apps.cache import Cache, cached


@cached("users")
async def load_user(user_id: int) -> dict[str, int]:
    return {"id": user_id}


async def main() -> None:
    await Cache.start_link("users", max_sise=10)
    await load_user("one")
    name: str = await load_user(1)
    load_user.invalidate(1, 2)
"""


def mypy(source: str, where: Path) -> subprocess.CompletedProcess[str]:
    where.mkdir(parents=True)
    (where / "program.py").write_text(source)
    (where / "mypy.ini").write_text("[mypy]\nstrict = True\n")
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(where / ".cache"), "program.py"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=170,
    )


@pytest.mark.timeout(180)
def test_a_typed_program_using_the_cache_checks_cleanly(tmp_path: Path) -> None:
    result = mypy(GOOD, tmp_path / "good")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(180)
def test_mistakes_are_type_errors(tmp_path: Path) -> None:
    result = mypy(BAD, tmp_path / "bad")
    assert result.returncode == 1, result.stdout
    errors = {int(m.group(1)) for m in re.finditer(r"program\.py:(\d+): error", result.stdout)}
    assert errors == {12, 13, 14, 15}, result.stdout
