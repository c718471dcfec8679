"""A typed user program type-checks cleanly against beamlet's signatures.

``run``, ``open_node`` (local and distributed) and the ``start_link`` of
GenServer and the supervisors have real signatures: options are keyword
parameters that a type checker (and an IDE) knows, and ``start_link`` returns
``Pid`` unless ``init`` may return ``Ignore``. mypy runs as a subprocess, in
strict mode, on a small user program; a second program with mistakes shows
that the checks are real (misspelt options, a bad strategy, an ``Ignore``-able
start used as a ``Pid``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

GOOD = """\
from __future__ import annotations

import trio

from beamlet import actors, cluster
from beamlet.actors import GenServer, IgnoreType, Ignore, NoReply, Pid, call
from beamlet.supervisors import DynamicSupervisor, Supervisor, SupervisorSpec, TaskSupervisor


class Counter(GenServer):
    async def init(self, start: int) -> None:
        self.n = start

    async def handle_call(self, request: object, caller: object) -> int:
        return self.n


class Lazy(GenServer):
    async def init(self) -> NoReply:
        return NoReply(timeout=1.0)


class Optional(GenServer):
    async def init(self, wanted: bool) -> IgnoreType | None:
        return None if wanted else Ignore


class Tree(Supervisor):
    async def init(self, size: int) -> SupervisorSpec:
        return SupervisorSpec([Counter.child_spec(size)], strategy="one_for_all")


async def main() -> int:
    counter: Pid = await Counter.start_link(0, name="counter")
    lazy: Pid = await Lazy.start(timeout=5.0)
    maybe: Pid | None = await Optional.start_link(True)
    if maybe is not None:
        await actors.stop(maybe)
    tree: Pid = await Tree.start_link(3, name="tree")
    sup: Pid = await Supervisor.start_link(
        [Counter.child_spec(1, id="c")], strategy="rest_for_one", max_restarts=5, max_seconds=1.0
    )
    dyn: Pid = await DynamicSupervisor.start_link(max_children=10, name="dyn")
    tasks: Pid = await TaskSupervisor.start_link(max_children=4)
    del lazy, tree, sup, dyn, tasks
    n: int = await call(counter, "get")
    return n


def start_local() -> int:
    return actors.run(main, name="nonode@nohost", watchdog_threshold=None)


def start_distributed() -> int:
    return cluster.run(
        main,
        name="api@127.0.0.1",
        cookie="a-long-cookie-0123456789abcdef",
        port=4370,
        seeds=["127.0.0.1:4371"],
        ticktime=5.0,
        auto_connect="once",
    )


async def in_trio() -> None:
    async with actors.open_node(watchdog_threshold=0.5) as node:
        await node.run(main)
    async with cluster.open_node(port=0, hidden=True, insecure=False) as dnode:
        await dnode.run(main)


trio.run(in_trio)
"""

BAD = """\
from beamlet import actors, cluster
from beamlet.actors import GenServer, IgnoreType, Pid
from beamlet.supervisors import Supervisor


class Optional(GenServer):
    async def init(self) -> IgnoreType | None:
        return None


async def main() -> None:
    pid: Pid = await Optional.start_link()
    await Supervisor.start_link([], strategy="one_for_al")


cluster.run(main, cokie="a-long-cookie-0123456789abcdef")
cluster.run(main, auto_connect="sometimes")
actors.run(main, watchdog=1.0)
"""


def mypy(source: str, where: Path) -> subprocess.CompletedProcess[str]:
    """Run ``mypy --strict`` on ``source`` as a user's ``program.py`` in ``where``."""
    where.mkdir()
    (where / "mypy.ini").write_text("[mypy]\nstrict = True\n")
    (where / "program.py").write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(where / ".cache"), "program.py"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=50,
    )


def test_a_typed_user_program_type_checks_cleanly(tmp_path: Path) -> None:
    result = mypy(GOOD, tmp_path / "good")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 1 source file" in result.stdout


def test_mistakes_in_options_and_starts_are_type_errors(tmp_path: Path) -> None:
    result = mypy(BAD, tmp_path / "bad")
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "import-not-found" not in out, out
    expected = [
        r'program\.py:12: error: Incompatible types in assignment \(expression has type "Pid \| None", variable has type "Pid"\)',
        r'program\.py:13: error: No overload variant of "start_link" of "Supervisor"',
        r'program\.py:16: error: Unexpected keyword argument "cokie" for "run"',
        r'program\.py:17: error: Argument "auto_connect" to "run" has incompatible type',
        r'program\.py:18: error: Unexpected keyword argument "watchdog" for "run"',
    ]
    for pattern in expected:
        assert re.search(pattern, out), f"{pattern}\n{out}"
