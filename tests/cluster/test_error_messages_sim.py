"""Errors of the distribution API say which call, on which node, and why.

In the simulation, under ``MockClock(autojump_threshold=0)``.
"""

from __future__ import annotations

from typing import Any

import pytest
from beamlet.actors import CallExitError, call, run
from beamlet.cluster import NotDistributedError, RpcError, connect, export, rpc, spawn_on
from beamlet.cluster.simulation import simulated_cluster

B = "b@b"


@export(name="test_messages.fail")
def _fail(what: str) -> None:
    raise KeyError(what)


@export(name="test_messages.sync")
def _sync() -> None:
    return None


async def test_rpc_errors_say_which_function_where_and_why(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b", "c"]) as sim:
        await sim.stop("c")

        async def client() -> list[RpcError]:
            errors = []
            for node, name, spawn in [
                (B, "nope.missing", False),
                (B, "test_messages.fail", False),
                ("c@c", "test_messages.fail", False),
                (B, "test_messages.sync", True),
            ]:
                with pytest.raises(RpcError) as info:
                    if spawn:
                        await spawn_on(node, name)
                    else:
                        await rpc(node, name, "oops")
                errors.append(info.value)
            return errors

        missing, raised, down, not_async = await sim.run("a", client)
    assert missing.reason == ("not_exported", "nope.missing")
    assert str(missing) == (
        "rpc of 'nope.missing' on b@b failed: no function is exported as 'nope.missing' "
        "there (see export()) (reason: ('not_exported', 'nope.missing'))"
    )
    assert raised.reason[0] == "exception"
    assert str(raised) == (
        "rpc of 'test_messages.fail' on b@b failed: the function raised KeyError: 'oops'"
    )
    assert down.reason == ("nodedown", "c@c")
    assert str(down).startswith(
        "rpc of 'test_messages.fail' on c@c failed: node c@c is down, unreachable"
    )
    assert not_async.reason == ("not_async", "test_messages.sync")
    assert str(not_async).startswith(
        "spawn_on of 'test_messages.sync' on b@b failed: 'test_messages.sync' is not an "
        "async function"
    )


async def test_a_call_to_a_name_on_a_down_node_names_both(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        await sim.stop("b")

        async def client() -> CallExitError:
            with pytest.raises(CallExitError) as info:
                await call(("kv", B), "get")
            return info.value

        exc = await sim.run("a", client)
    assert exc.reason == ("nodedown", B)
    assert str(exc) == (
        "call to ('kv', 'b@b') failed: node b@b is down or unreachable "
        "(reason: ('nodedown', 'b@b'))"
    )


def test_not_distributed_says_what_to_do() -> None:
    async def main() -> None:
        await connect("b@127.0.0.1")

    with pytest.raises(NotDistributedError) as info:
        run(main)
    assert str(info.value) == (
        "node nonode@nohost is not distributed: start it with beamlet.cluster.run or "
        "open_node, or call start_distribution(name) first"
    )
