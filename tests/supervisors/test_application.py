"""The application runner: boot a tree, shut it down on SIGTERM/SIGINT, exit codes."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from beamlet.actors import Exit, open_node, receive
from beamlet.supervisors import (
    ApplicationError,
    ChildSpec,
    ForcedShutdownError,
    load_children,
    run_application,
    serve,
    worker,
)
from line_reader import LineReader

HERE = Path(__file__).parent
APP = HERE / "app_tree.py"
#: Real time allowed for the child interpreter to start and answer (generous for slow CI).
PATIENCE = 30.0


class App:
    """A running ``app_tree.py``, with its stdout lines read in the background."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(APP), *args],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        self.output = LineReader(self.proc.stdout, "the app")
        #: Every line it printed and a ``wait_for`` took.
        self.seen = self.output.seen

    def wait_for(self, prefix: str) -> list[str]:
        """Read lines until one starts with ``prefix``; return the lines read."""
        return self.output.wait_for(lambda line: line.startswith(prefix), PATIENCE)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self) -> int:
        return self.proc.wait(timeout=PATIENCE)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def app_factory() -> Any:
    apps: list[App] = []

    def start(*args: str) -> App:
        app = App(*args)
        apps.append(app)
        return app

    yield start
    for app in apps:
        app.close()


GRACEFUL = [
    "terminate c shutdown",
    "terminate b2 shutdown",
    "terminate b1 shutdown",
    "terminate a shutdown",
    "exit 0",
]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_shuts_the_tree_down_in_reverse_order(app_factory: Any, signum: int) -> None:
    app = app_factory()
    app.wait_for("ready")
    app.signal(signum)
    assert app.wait_for("exit") == GRACEFUL
    assert app.wait() == 0


def test_target_form_module_attribute(app_factory: Any) -> None:
    app = app_factory("--target")
    app.wait_for("ready")
    app.signal(signal.SIGTERM)
    assert app.wait_for("exit") == GRACEFUL
    assert app.wait() == 0


@pytest.mark.parametrize(
    ("second", "status"), [(signal.SIGTERM, 128 + 15), (signal.SIGINT, 128 + 2)]
)
def test_second_signal_forces_exit(app_factory: Any, second: int, status: int) -> None:
    app = app_factory("--slow")
    app.wait_for("ready")
    app.signal(signal.SIGTERM)
    app.wait_for("terminate c")  # stuck there for an hour
    app.signal(second)
    app.wait_for("exit")
    assert app.seen[-1] == f"exit {status}"
    assert app.wait() == status


# -- in process -------------------------------------------------------------------------


async def crash_at_once() -> None:
    raise Exit("boom")


async def never_starts() -> Any:
    raise ValueError("no")


async def idle() -> None:
    await receive()


async def test_serve_reports_a_tree_that_fails_to_start() -> None:
    async with open_node():
        with pytest.raises(ApplicationError) as info:
            await serve([ChildSpec("bad", never_starts)], signals=())
        reason = info.value.reason
        assert reason[0] == "shutdown" and reason[1][:2] == ("failed_to_start_child", "bad")


async def test_serve_reports_a_root_that_gives_up(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="beamlet")
    ready: list[Any] = []
    async with open_node():
        with pytest.raises(ApplicationError) as info:
            await serve(
                [worker(idle, id="ok"), worker(crash_at_once, id="crasher")],
                signals=(),
                max_restarts=2,
                on_ready=ready.append,
            )
    assert info.value.reason == "shutdown"  # OTP: the exit reason stays `shutdown`
    assert len(ready) == 1
    # The last line says why the root exited, not only its exit reason.
    last = caplog.records[-1]
    [root] = ready
    assert last.getMessage() == (
        f"root supervisor {root!r} gave up: more than 2 restarts in 5 s "
        f"(reached_max_restart_intensity); the last failure: child 'crasher' "
        f"({last.beamlet_pid!r}) exited with reason 'boom'; the root exited with "
        "reason 'shutdown'"
    )
    assert last.levelno == logging.ERROR
    assert (last.beamlet_report, last.beamlet_child_id, last.beamlet_reason) == (
        "application_gave_up",
        "crasher",
        "boom",
    )
    assert (last.beamlet_max_restarts, last.beamlet_max_seconds) == (2, 5.0)
    assert last.beamlet_exit_reason == "shutdown"
    # The report of the supervisor itself says so too.
    [escalation] = [
        r
        for r in caplog.records
        if getattr(r, "beamlet_report", None) == "reached_max_restart_intensity"
    ]
    assert escalation.getMessage().startswith(
        f"supervisor {root!r} gave up (reached_max_restart_intensity: more than 2 restarts "
        "in 5 s); the last failure: child 'crasher' ("
    )


def test_run_application_exit_status_for_a_failing_tree() -> None:
    assert run_application([ChildSpec("bad", never_starts)], log_level=None) == 1


async def test_cancelling_serve_returns_at_once_and_stops_the_tree(autojump_clock: Any) -> None:
    async with open_node() as node:
        with trio.move_on_after(1.0):
            await serve([worker(idle, id="a")], name="root", signals=())
        assert trio.current_time() == 1.0

        async def root_is_gone() -> bool:
            from beamlet.actors import monitor, whereis

            pid = whereis("root")
            if pid is None:
                return True
            ref = monitor(pid)
            down = await receive(lambda m: getattr(m, "ref", None) == ref)
            return bool(down.reason == "shutdown")

        assert await node.run(root_is_gone)


def test_forced_shutdown_error_names_the_signal() -> None:
    assert "SIGTERM" in str(ForcedShutdownError(signal.SIGTERM))


# -- load_children -----------------------------------------------------------------------


def test_load_children() -> None:
    here = str(HERE)
    sys.path.insert(0, here)
    try:
        specs = load_children("app_tree:children")
        assert [spec.id for spec in specs] == ["a", "b", "c"]
        assert all(isinstance(spec, ChildSpec) for spec in specs)
        with pytest.raises(ValueError, match="module:attribute"):
            load_children("app_tree")
        with pytest.raises(ImportError):
            load_children("no_such_module_here:children")
        with pytest.raises(AttributeError):
            load_children("app_tree:nothing")
        with pytest.raises(TypeError) as info:
            load_children("app_tree:Noisy")  # a GenServer class: not called
        assert str(info.value) == (
            "app_tree:Noisy is a GenServer class, not a list of child specs; name a list of "
            "child specs instead, e.g. `children = [Noisy.child_spec()]` (with its "
            "arguments), or a function returning one"
        )
        with pytest.raises(TypeError, match=r"is a Supervisor class, .*\[Supervisor\.child_spec"):
            load_children("beamlet.supervisors:Supervisor")
        with pytest.raises(TypeError, match="must be a list of child specs"):
            load_children("app_tree:sys.maxsize")  # an int: neither a list nor a function
    finally:
        sys.path.remove(here)
