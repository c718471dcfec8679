"""Calls across nodes in the simulation: GenServer, rpc and spawn_on.

Every test runs a cluster of nodes in one ``trio.run`` over the in-memory
network, under ``MockClock(autojump_threshold=0)``: virtual time is exact.
Test names cite the rules of otp-semantics.md (G for GenServer, D for distribution).
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from beamlet.actors import (
    CallExitError,
    CallTimeoutError,
    Down,
    Exit,
    ExitSignal,
    GenServer,
    Pid,
    call,
    cast,
    monitor,
    receive,
    self_pid,
    send,
    trap_exits,
)
from beamlet.cluster import (
    DistributionBusyError,
    RemoteError,
    RpcError,
    export,
    rpc,
    spawn_on,
)
from beamlet.cluster.simulation import SimulatedCluster, simulated_cluster

B = "b@b"


async def forever() -> None:
    await trio.sleep_forever()


async def exit_with(reason: Any, after: float = 0.0) -> None:
    await trio.sleep(after)
    raise Exit(reason)


# -- GenServer across nodes ----------------------------------------------------------------


class KV(GenServer):
    async def init(self, _arg: Any = None) -> None:
        self.data: dict[Any, Any] = {}

    async def handle_call(self, request: Any, caller: Any) -> Any:
        op = request[0]
        if op == "put":
            self.data[request[1]] = request[2]
            return "ok"
        if op == "get":
            return self.data.get(request[1])
        if op == "die":
            raise Exit(request[1])
        if op == "hang":
            await trio.sleep(request[1])
            return "late"
        return None

    async def handle_cast(self, request: Any) -> None:
        self.data[request[0]] = request[1]


async def _start_kv() -> Pid:
    return await KV.start(name="kv")


async def test_g_call_across_nodes_replies(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        server = await sim.run("b", _start_kv)

        async def client() -> list[Any]:
            out = [await call(("kv", B), ("put", "x", 1)), await call(server, ("get", "x"))]
            cast(("kv", B), ("y", (1, 2)))
            out.append(await call(("kv", B), ("get", "y")))
            return out

        assert await sim.run("a", client) == ["ok", 1, (1, 2)]


async def test_g35_call_remote_server_dying_mid_call_gives_its_reason(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        await sim.run("b", _start_kv)

        async def client() -> Any:
            with pytest.raises(CallExitError) as info:
                await call(("kv", B), ("die", ("shutdown", "mid-call")))
            return info.value.reason

        assert await sim.run("a", client) == ("shutdown", "mid-call")


async def test_g35_call_to_a_missing_remote_name_gives_noproc(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:

        async def client() -> Any:
            with pytest.raises(CallExitError) as info:
                await call(("kv", B), ("get", "x"))
            return info.value.reason

        assert await sim.run("a", client) == "noproc"


async def test_g35_call_when_the_node_goes_down_gives_nodedown(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        await sim.run("b", _start_kv)

        async def client() -> Any:
            sim.spawn("a", _crash_later, sim, "b", 1.0)
            with pytest.raises(CallExitError) as info:
                await call(("kv", B), ("hang", 30), timeout=60)
            return info.value.reason, trio.current_time()

        reason, at = await sim.run("a", client)
        assert reason == ("nodedown", B)
        assert at < 2.0  # the end of the connection, not the timeout

        async def after() -> Any:
            with pytest.raises(CallExitError) as info:
                await call(("kv", B), ("get", "x"))
            return info.value.reason

        assert await sim.run("a", after) == ("nodedown", B)


async def _crash_later(sim: SimulatedCluster, short: str, delay: float) -> None:
    await trio.sleep(delay)
    sim.crash(short)


async def test_g3_a_late_reply_from_a_remote_server_is_not_delivered(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        await sim.run("b", _start_kv)

        async def client() -> Any:
            with pytest.raises(CallTimeoutError):
                await call(("kv", B), ("hang", 2.0), timeout=1.0)
            await trio.sleep(5)  # the reply came back meanwhile
            with pytest.raises(trio.TooSlowError):
                await receive(timeout=0)
            return await call(("kv", B), ("get", "x"))

        assert await sim.run("a", client) is None


async def test_g33_cast_to_an_unreachable_node_returns_at_once(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        sim.partition({"a"}, {"b"})

        async def client() -> float:
            start = trio.current_time()
            cast(("kv", B), ("k", "v"))  # connected but partitioned
            cast(("kv", "ghost@nowhere"), ("k", "v"))  # unknown node
            await sim.stop("b")
            cast(("kv", B), ("k", "v"))  # known address, node gone
            return trio.current_time() - start

        assert await sim.run("a", client) < 0.1


# -- rpc ---------------------------------------------------------------------------------


@export(name="test_sim.add")
def _add(x: int, y: int) -> int:
    return x + y


@export(name="test_sim.node")
async def _which_node() -> str:
    return self_pid().node


@export(name="test_sim.fail")
def _fail(text: str) -> None:
    raise KeyError(text)


@export(name="test_sim.worker")
async def _worker(reply_to: Pid) -> None:
    send(reply_to, ("started", self_pid()))
    msg = await receive()
    raise Exit(msg)


@export(name="test_sim.lambda")
def _unencodable() -> Any:
    return lambda: None


@export(name="test_sim.quick")
async def _quick() -> None:
    return None


def _not_exported() -> None:  # pragma: no cover - must never run
    raise AssertionError("ran an unexported function")


async def test_rpc_runs_exported_functions_and_refuses_the_rest(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:

        async def client() -> list[Any]:
            out = [await rpc(B, "test_sim.add", 2, 3), await rpc(B, "test_sim.node")]
            with pytest.raises(RpcError) as refused:
                await rpc(B, f"{__name__}._not_exported")
            out.append(refused.value.reason)
            with pytest.raises(RpcError) as raised:
                await rpc(B, "test_sim.fail", "oops")
            out.append(raised.value.reason)
            return out

        total, where, refused, raised = await sim.run("a", client)
        assert (total, where) == (5, B)
        assert refused == ("not_exported", f"{__name__}._not_exported")
        assert raised[0] == "exception"
        assert isinstance(raised[1], RemoteError)
        assert raised[1].type_name == "KeyError" and "oops" in raised[1].message


async def test_rpc_a_result_that_cannot_cross_gives_an_error_not_a_hang(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:

        async def client() -> Any:
            with pytest.raises(RpcError) as info:
                await rpc(B, "test_sim.lambda", timeout=None)
            return info.value.reason

        kind, error = await sim.run("a", client)
        assert kind == "exception"
        assert isinstance(error, RemoteError) and error.type_name == "TypeError"


async def test_rpc_to_a_down_node_gives_nodedown(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        await sim.stop("b")

        async def client() -> Any:
            with pytest.raises(RpcError) as info:
                await rpc(B, "test_sim.add", 1, 2)
            return info.value.reason

        assert await sim.run("a", client) == ("nodedown", B)


async def test_spawn_on_starts_an_exported_function_and_links(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:

        async def client() -> list[Any]:
            trap_exits(True)
            me = self_pid()
            pid = await spawn_on(B, "test_sim.worker", me, link=True)
            started = await receive(lambda m: isinstance(m, tuple), timeout=5)
            send(pid, "finished")
            signal = await receive(lambda m: isinstance(m, ExitSignal), timeout=5)
            with pytest.raises(RpcError) as refused:
                await spawn_on(B, f"{__name__}._not_exported")
            return [pid, started, signal, refused.value.reason[0]]

        pid, started, signal, refused = await sim.run("a", client)
        assert pid.node == B
        assert started == ("started", pid)
        assert signal == ExitSignal(pid, "finished")
        assert refused == "not_exported"


async def test_spawn_on_link_to_a_process_that_ends_at_once_gives_one_exit_signal(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:

        async def client() -> list[Any]:
            trap_exits(True)
            pid = await spawn_on(B, "test_sim.quick", link=True)
            got = [await receive(timeout=5)]
            try:
                got.append(await receive(timeout=5))
            except trio.TooSlowError:
                pass
            return [pid, got]

        pid, got = await sim.run("a", client)
        assert got == [ExitSignal(pid, "normal")]


async def test_d18_a_server_replying_over_a_busy_connection_does_not_crash(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"], busy_limit=16 * 1024) as sim:
        sink = sim.spawn("a", forever)
        server = await sim.run("b", _start_kv)
        sim.delay(0.5, "a", "b")

        async def flood() -> None:  # keeps b -> a busy for 10 s
            busy = 0
            while trio.current_time() < 10:
                try:
                    send(sink, b"y" * 1000)
                except DistributionBusyError:
                    busy += 1
                    await trio.sleep(0.01)
            assert busy > 100

        sim.spawn("b", flood)
        await trio.sleep(1)

        async def client() -> Any:
            return await call(("kv", B), ("get", "nothing"), timeout=60)

        assert await sim.run("a", client) is None
        assert sim.node("b").process_info(server) is not None

        async def watch() -> Any:  # a Down from b to a, while b -> a is busy (lost_exit)
            doomed = sim.spawn("b", exit_with, "gone", 3.0)
            ref = monitor(doomed)
            return ref, doomed, await receive(lambda m: isinstance(m, Down), timeout=30)

        ref, doomed, down = await sim.run("a", watch)
        assert down == Down(ref, doomed, "gone")
