"""Registry under supervision: a registry child, and children named via it."""

from __future__ import annotations

from typing import Any

import trio.testing
from beamlet.actors import (
    Down,
    GenServer,
    Node,
    Pid,
    Registry,
    call,
    cast,
    monitor,
    receive,
    self_pid,
    send_exit,
    whereis,
)
from beamlet.supervisors import ChildSpec, Supervisor


class Counter(GenServer):
    async def init(self, start: int) -> None:
        self.n = start

    async def handle_call(self, request: Any, caller: Any) -> Any:
        if request == "pid":
            return self_pid()
        return self.n

    async def handle_cast(self, request: int) -> None:
        self.n += request


async def wait_down(ref: Any) -> Down:
    msg: Down = await receive(lambda m: type(m) is Down and m.ref == ref)
    return msg


def test_registry_child_spec_is_accepted_by_child_spec() -> None:
    spec = ChildSpec.coerce(Registry.child_spec("servers", keys="duplicate"))
    assert spec.id == "servers"
    assert spec.restart == "permanent"
    assert spec.type == "worker"
    assert spec.args == ()


async def test_a_restarted_child_registers_its_via_name_again(node: Node) -> None:
    async def body() -> None:
        name = Registry.via("servers", "counter")
        await Supervisor.start_link(
            [Registry.child_spec("servers"), Counter.child_spec(10, name=name)],
            strategy="one_for_one",
        )
        first = await call(name, "pid")
        cast(name, 1)
        assert await call(name, "get") == 11
        send_exit(first, "kill")
        await trio.testing.wait_all_tasks_blocked()
        second = await call(name, "pid")
        assert second != first
        assert Registry.lookup("servers", "counter") == [(second, None)]
        assert await call(name, "get") == 10  # a fresh start

    await node.run(body)


async def test_a_restarted_registry_brings_its_named_children_back(node: Node) -> None:
    """The registry's exit signal takes its registered children down with it; the
    supervisor restarts the registry, then the children, which register again."""

    async def body() -> None:
        name = Registry.via("servers", "counter")
        await Supervisor.start_link(
            [Registry.child_spec("servers"), Counter.child_spec(10, name=name)],
            strategy="one_for_one",
        )
        worker = await call(name, "pid")
        owner = whereis("servers")
        assert owner is not None
        worker_ref = monitor(worker)
        send_exit(owner, "kill")
        assert (await wait_down(worker_ref)).reason == "killed"
        await trio.testing.wait_all_tasks_blocked()
        new_owner = whereis("servers")
        assert new_owner is not None and new_owner != owner
        new_worker = await call(name, "pid")
        assert isinstance(new_worker, Pid) and new_worker != worker
        assert Registry.lookup("servers", "counter") == [(new_worker, None)]

    await node.run(body)
