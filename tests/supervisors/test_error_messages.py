"""The supervisors' errors say which operation on which supervisor failed, and why.

The Erlang reason stays the ``reason`` attribute.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import trio
import trio.testing
from beamlet.actors import GenServer, Node, Pid, StartError, send_exit, spawn, trap_exits
from beamlet.supervisors import (
    ApplicationError,
    DynamicSupervisor,
    Supervisor,
    SupervisorError,
    serve,
)


@pytest.fixture(autouse=True)
def quiet_reports() -> Iterator[None]:
    loggers = [logging.getLogger(n) for n in ("beamlet", "beamlet.application")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    yield
    for lg, level in zip(loggers, levels, strict=True):
        lg.setLevel(level)


class Worker(GenServer):
    async def init(self, n: int = 0) -> None:
        self.n = n


class Database(GenServer):
    async def init(self) -> None:
        raise ConnectionRefusedError("db down")


async def _error(fn: Any, *args: Any, **kwargs: Any) -> Exception:
    try:
        await fn(*args, **kwargs)
    except Exception as exc:
        return exc
    raise AssertionError("no error")


async def test_refusals_name_the_operation_the_supervisor_and_why(node: Node) -> None:
    async def body() -> list[Exception]:
        await Supervisor.start_link([Worker.child_spec(1, id="w")], name="app")
        return [
            await _error(Supervisor.terminate_child, "app", "db"),
            await _error(Supervisor.delete_child, "app", "w"),
            await _error(Supervisor.start_child, "app", Worker.child_spec(2, id="w")),
            await _error(Supervisor.restart_child, "app", "w"),
            await _error(Supervisor.which_children, "nosup"),
        ]

    not_found, running, started, restart, noproc = await node.run(body)
    assert all(type(e) is SupervisorError for e in (not_found, running, started, restart, noproc))
    assert str(not_found) == (
        "terminate_child('db') on supervisor 'app' failed: it has no child with this id "
        "(reason: 'not_found')"
    )
    assert not_found.reason == "not_found"  # type: ignore[attr-defined]
    assert not_found.supervisor == "app"  # type: ignore[attr-defined]
    assert not_found.request == ("terminate_child", "db")  # type: ignore[attr-defined]
    assert "delete_child('w') on supervisor 'app' failed: the child is running" in str(running)
    holder = started.reason[1]  # type: ignore[attr-defined]
    assert isinstance(holder, Pid)
    assert str(started) == (
        f"start_child('w') on supervisor 'app' failed: a child with this id is already "
        f"running as {holder!r} (reason: ('already_started', {holder!r}))"
    )
    assert "restart_child('w')" in str(restart) and "(reason: 'running')" in str(restart)
    assert str(noproc) == (
        "which_children() on supervisor 'nosup' failed: no process is registered as 'nosup' "
        "(reason: 'noproc')"
    )


async def test_a_child_that_fails_to_start_is_named(node: Node) -> None:
    async def body() -> list[Exception]:
        trap_exits(True)
        sup = await Supervisor.start_link([], name="app")
        return [
            await _error(Supervisor.start_child, sup, Database.child_spec(id="db")),
            await _error(Supervisor.start_link, [Worker.child_spec(), Database.child_spec()]),
        ]

    child, tree = await node.run(body)
    assert type(child) is StartError and isinstance(child.reason, ConnectionRefusedError)
    assert str(child).startswith("cannot start child 'db' of supervisor <")
    assert str(child).endswith("init raised ConnectionRefusedError: db down")
    assert type(tree) is StartError
    assert tree.reason[1][:2] == ("failed_to_start_child", Database)  # type: ignore[attr-defined]
    assert str(tree).startswith(
        "cannot start Supervisor: its child Database failed to start: "
        "init raised ConnectionRefusedError: db down (reason: ('shutdown', "
    )


async def test_a_taken_supervisor_name_and_max_children(node: Node) -> None:
    async def body() -> list[Exception]:
        await Supervisor.start_link([], name="app")
        dyn = await DynamicSupervisor.start_link(max_children=0, name="dyn")
        return [
            await _error(Supervisor.start_link, [], name="app"),
            await _error(DynamicSupervisor.start_link, None, 3, 5.0, "dyn"),
            await _error(DynamicSupervisor.start_child, dyn, Worker.child_spec()),
        ]

    taken, dyn_taken, full = await node.run(body)
    assert type(taken) is StartError and taken.reason[0] == "already_started"
    assert str(taken).startswith("cannot start Supervisor as 'app': its name is already")
    assert str(dyn_taken).startswith("cannot start DynamicSupervisor as 'dyn': its name")
    assert type(full) is SupervisorError and full.reason == "max_children"
    assert str(full).startswith("start_child(Worker) on supervisor ")
    assert "it already runs max_children children" in str(full)


async def test_a_call_to_a_supervisor_that_shuts_down_meanwhile_says_so(node: Node) -> None:
    release = trio.Event()

    class Blocking(GenServer):
        async def init(self) -> None:
            await release.wait()

    async def body() -> Exception:
        trap_exits(True)  # the supervisor's exit reaches its parent
        sup = await DynamicSupervisor.start_link()
        spawn(DynamicSupervisor.start_child, sup, Blocking.child_spec())  # keeps it busy
        await trio.testing.wait_all_tasks_blocked()
        send_exit(sup, "shutdown")  # from its parent: it ends once free
        failure: list[Exception] = []
        answered = trio.Event()

        async def asker() -> None:
            failure.append(await _error(DynamicSupervisor.which_children, sup))
            answered.set()

        spawn(asker)
        await trio.testing.wait_all_tasks_blocked()
        release.set()
        await answered.wait()
        return failure[0]

    exc = await node.run(body)
    assert type(exc) is SupervisorError and exc.reason == "shutdown"
    assert str(exc).startswith("which_children() on supervisor <")
    assert str(exc).endswith("failed: the supervisor was shut down (reason: 'shutdown')")


async def test_application_errors_say_whether_the_tree_started(node: Node) -> None:
    async def body() -> Exception:
        return await _error(serve, [Database.child_spec(id="db")], signals=())

    exc = await node.run(body)
    assert type(exc) is ApplicationError and exc.started is False
    assert str(exc).startswith(
        "the application failed to start: cannot start the supervision tree: "
        "its child 'db' failed to start: init raised ConnectionRefusedError: db down"
    )
    crashed = ApplicationError("shutdown")
    assert crashed.started is True
    assert str(crashed).startswith("the application's root supervisor was shut down")
