"""Supervisors on another node, called as local ones: their requests and replies cross the wire.

The replies (``ChildInfo``, ``ChildCounts``, refusals, failed starts) and
the child specs of ``start_child`` are declared by ``beamlet.supervisors``
with lowlevel's ``register_wire_type``; a spec crosses when its start
function is exported. Every test runs in the simulation under
``MockClock(autojump_threshold=0)``.
"""

from __future__ import annotations

from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
import trio
from beamlet.actors import GenServer, Pid, StartError, call, receive
from beamlet.actors.lowlevel import wire_types
from beamlet.cluster import DecodeError, ExportedFunction, RpcError, decode, encode, export
from beamlet.cluster.simulation import SimulatedCluster, simulated_cluster
from beamlet.supervisors import (
    ChildCounts,
    ChildInfo,
    ChildSpec,
    DynamicSupervisor,
    Supervisor,
    SupervisorError,
    worker,
)

B = "b@b"


async def idle() -> None:
    await receive()


@export(name="tests.remote_sup.idle")
async def exported_idle() -> None:
    await receive()


class Counter(GenServer):
    async def init(self, start: int) -> None:
        self.count = start

    async def handle_call(self, request: Any, caller: Any) -> Any:
        return self.count


export(Counter.start_link, name="tests.remote_sup.counter")


@export(name="tests.remote_sup.fails")
async def fails_to_start() -> Pid:
    raise StartError("no_database")


async def not_exported() -> None:
    await receive()


async def boot_trees() -> None:
    await Supervisor.start_link([worker(idle, id="w")], name="sup")
    await DynamicSupervisor.start_link(name="dyn")
    await trio.sleep_forever()


async def cluster_with_trees(sim: SimulatedCluster) -> None:
    sim.spawn("b", boot_trees)
    await sim.wait_until(lambda: sim.node("b").whereis("dyn") is not None)


async def test_which_and_count_children_of_a_remote_supervisor(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        await cluster_with_trees(sim)

        async def ask() -> tuple[list[ChildInfo], ChildCounts]:
            with trio.fail_after(5):
                return (
                    await Supervisor.which_children(("sup", B)),
                    await Supervisor.count_children(("sup", B)),
                )

        children, counts = await sim.run("a", ask)
        [info] = children
        assert info.id == "w" and info.type == "worker"
        assert isinstance(info.pid, Pid) and info.pid.node == B
        assert sim.node("b").is_alive(info.pid)
        assert counts == ChildCounts(specs=1, active=1, supervisors=0, workers=1)


async def test_start_terminate_restart_delete_child_on_a_remote_supervisor(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        await cluster_with_trees(sim)
        sup = ("sup", B)

        async def manage() -> None:
            with trio.fail_after(5):
                # A spec whose start function is exported crosses by name.
                pid = await Supervisor.start_child(sup, worker(exported_idle, id="x", name="x"))
                assert isinstance(pid, Pid) and pid.node == B
                counter = await Supervisor.start_child(
                    sup, ChildSpec("counter", Counter.start_link, args=(41,))
                )
                assert isinstance(counter, Pid) and await call(counter, "get") == 41
                ids = [c.id for c in await Supervisor.which_children(sup)]
                assert ids == ["w", "x", "counter"]
                # Refusals come back as SupervisorError with the Erlang reason.
                with pytest.raises(SupervisorError) as refused:
                    await Supervisor.start_child(sup, worker(exported_idle, id="x"))
                assert refused.value.reason == ("already_started", pid)
                await Supervisor.terminate_child(sup, "x")
                [x] = [c for c in await Supervisor.which_children(sup) if c.id == "x"]
                assert x.pid is None
                again = await Supervisor.restart_child(sup, "x")
                assert isinstance(again, Pid) and again != pid
                with pytest.raises(SupervisorError) as running:
                    await Supervisor.delete_child(sup, "x")
                assert running.value.reason == "running"
                await Supervisor.terminate_child(sup, "x")
                await Supervisor.delete_child(sup, "x")
                with pytest.raises(SupervisorError) as missing:
                    await Supervisor.terminate_child(sup, "x")
                assert missing.value.reason == "not_found"
                assert "terminate_child('x') on supervisor ('sup', 'b@b')" in str(missing.value)

        await sim.run("a", manage)
        assert sim.node("b").whereis("x") is None


async def test_a_failed_remote_start_is_a_starterror_with_its_reason(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        await cluster_with_trees(sim)

        async def start() -> Any:
            with pytest.raises(StartError) as info:
                await Supervisor.start_child(("sup", B), ChildSpec("db", fails_to_start))
            return info.value.reason

        assert await sim.run("a", start) == "no_database"


async def test_a_start_function_that_is_not_exported_is_refused_in_the_caller(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        await cluster_with_trees(sim)

        async def start() -> str:
            with pytest.raises(TypeError) as info:
                await Supervisor.start_child(("sup", B), worker(not_exported, id="n"))
            return str(info.value)

        message = await sim.run("a", start)
        assert "cannot encode the function not_exported" in message
        assert "beamlet.cluster.export" in message
        # nothing reached b
        assert [c.id for c in await sim.run("b", Supervisor.which_children, "sup")] == ["w"]


async def test_an_export_missing_on_the_supervisors_node_fails_the_start(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        await cluster_with_trees(sim)

        async def start() -> Any:
            with pytest.raises(StartError) as info:
                await Supervisor.start_child(
                    ("sup", B), ChildSpec("ghost", ExportedFunction("tests.remote_sup.nowhere"))
                )
            return info.value.reason

        reason = await sim.run("a", start)
        assert "tests.remote_sup.nowhere" in str(reason)


async def test_a_remote_dynamic_supervisor(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        await cluster_with_trees(sim)
        dyn = ("dyn", B)

        async def manage() -> None:
            with trio.fail_after(5):
                first = await DynamicSupervisor.start_child(dyn, worker(exported_idle))
                second = await DynamicSupervisor.start_child(
                    dyn, ChildSpec("c", Counter.start_link, args=(7,))
                )
                assert isinstance(first, Pid) and isinstance(second, Pid)
                children = await DynamicSupervisor.which_children(dyn)
                assert sorted(c.pid for c in children) == sorted([first, second])  # type: ignore[type-var]
                assert all(c.id is None for c in children)
                counts = await DynamicSupervisor.count_children(dyn)
                assert counts == ChildCounts(specs=2, active=2, supervisors=0, workers=2)
                await DynamicSupervisor.terminate_child(dyn, first)
                assert [c.pid for c in await DynamicSupervisor.which_children(dyn)] == [second]

        await sim.run("a", manage)


def test_supervisor_values_round_trip_through_the_codec() -> None:
    names = {t.name for t in wire_types()}
    assert {
        "beamlet.supervisors.ChildInfo",
        "beamlet.supervisors.ChildCounts",
        "beamlet.supervisors.Refused",
        "beamlet.supervisors.StartFailed",
        "beamlet.supervisors.ChildSpec",
        "beamlet.supervisors.SpawnLink",
    } <= names
    pid = Pid(B, 3, 1)
    for value in [
        ChildInfo("w", pid, "worker"),
        ChildInfo(("t", 1), "restarting", "supervisor"),
        ChildInfo(None, None, "worker"),
        ChildCounts(3, 2, 1, 2),
        [ChildInfo("a", pid, "worker")],
    ]:
        assert decode(encode(value)) == value
    spec = decode(encode(ChildSpec("c", Counter.start_link, args=(1,), restart="transient")))
    assert isinstance(spec, ChildSpec)
    assert spec.start == Counter.start_link  # the function exported under that name here
    missing = decode(encode(ExportedFunction("tests.remote_sup.nowhere")))
    assert missing == ExportedFunction("tests.remote_sup.nowhere")
    with pytest.raises(RpcError, match=r"tests\.remote_sup\.nowhere"):
        missing()
    assert (spec.id, spec.args, spec.restart, spec.shutdown) == ("c", (1,), "transient", 5.0)


@pytest.mark.parametrize(
    "fields",
    [
        ("w", "alive", "worker"),  # pid neither a Pid, "restarting" nor None
        ("w", None, "boss"),  # bad type
        (["unhashable"], None, "worker"),
    ],
)
def test_a_malformed_child_info_is_a_decode_error(fields: tuple[Any, ...]) -> None:
    good = encode(ChildInfo("w", None, "worker"))
    # Rebuild the record with the bad fields, as a peer could send it.
    marker, *_ = msgpack.unpackb(good, raw=False, strict_map_key=False)
    bad = msgpack.packb([marker, *fields], use_bin_type=True)
    with pytest.raises(DecodeError):
        decode(bad)
