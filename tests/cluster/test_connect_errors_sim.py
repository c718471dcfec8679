"""Why ``connect`` failed: ``ConnectError`` for the caller, WARNING lines for the operator.

In the simulation under ``MockClock(autojump_threshold=0)``; the same over
real TCP, TLS and OS processes is in test_real_cluster.py.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing
from beamlet.cluster import ConnectError, connect
from beamlet.cluster._limits import FAILURE_LOG_PERIOD
from beamlet.cluster.simulation import simulated_cluster

OTHER_COOKIE = "another-cookie-0123456789abcdef0123"


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_wrong_cookie_is_a_false_or_a_connecterror_that_says_so(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)  # the default level: failures are visible
    async with simulated_cluster(["a"]) as sim:
        await sim.add("x", seeds=[], cookie=OTHER_COOKIE)

        async def plain() -> bool:
            return await connect("a:4370")

        async def raising() -> ConnectError:
            with pytest.raises(ConnectError) as info:
                await connect("a:4370", raise_on_error=True)
            return info.value

        assert await sim.run("x", plain) is False
        error = await sim.run("x", raising)
        assert (
            error.reason == "refused by the peer: bad cookie (the two nodes have different cookies)"
        )
        assert (error.node, error.address) == ("a@a", "a:4370")
        assert str(error) == f"could not connect to a@a (a:4370): {error.reason}"
        assert isinstance(error, ConnectionError)  # and so an OSError
        assert sim.nodes("x") == [] and sim.nodes("a") == []

        # Both sides said why, once each at WARNING, however often it is tried.
        for _ in range(5):
            assert await sim.run("x", plain) is False
        lines = warnings(caplog)
        assert lines.count(f"could not connect to a@a (a:4370): {error.reason}") == 1
        [refused] = [line for line in lines if "refused an incoming connection" in line]
        assert "proof does not match" in refused
        assert len(lines) == 2
        # ... then how many more, once a period, per address.
        await trio.sleep(FAILURE_LOG_PERIOD + 1)
        lines = warnings(caplog)
        assert "6 more failed connection attempts to a:4370 in the last 60 s" in lines
        assert "6 more failed incoming handshakes from x in the last 60 s" in lines


async def test_a_connecterror_for_each_way_of_failing(autojump_clock: Any) -> None:
    async with simulated_cluster(["a"], connect=False) as sim:

        async def reasons() -> list[tuple[str, str | None, str | None]]:
            out = []
            for target in ("nowhere@h", "zz:4370"):
                with pytest.raises(ConnectError) as info:
                    await connect(target, raise_on_error=True)
                out.append((info.value.reason, info.value.node, info.value.address))
            return out

        unknown, nothing = await sim.run("a", reasons)
        assert unknown[0].startswith("no address is known for it")
        assert unknown[1:] == ("nowhere@h", None)
        assert nothing == ("connection to zz:4370 refused", None, "zz:4370")


async def test_raise_on_error_returns_true_when_connected(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"], connect=False) as sim:

        async def both() -> tuple[bool, bool, bool]:
            return (
                await connect("b:4370", raise_on_error=True),
                await connect("b@b", raise_on_error=True),
                await connect("a@a", raise_on_error=True),  # itself
            )

        assert await sim.run("a", both) == (True, True, True)


async def test_an_error_is_not_reported_for_a_later_successful_attempt(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"], connect=False) as sim:
        sim.partition({"a"}, {"b"})

        async def fails() -> str:
            with pytest.raises(ConnectError) as info:
                await connect("b:4370", raise_on_error=True)
            return info.value.reason

        assert "refused" in await sim.run("a", fails)
        sim.heal()

        async def works() -> bool:
            return await connect("b:4370", raise_on_error=True)

        assert await sim.run("a", works) is True
