"""System services survive any message: rpc, the pg scope, discovery and the kernel.

Every system process checks what it receives: a malformed call gets an error
reply, a malformed cast or message is dropped, each is logged (rate-limited),
and the process keeps serving, with the same pid. The deterministic tests
below each failed before the services checked their input; the property test
throws random terms at every service's name, from the same node and from
another, as calls, casts and plain sends.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pytest
import trio
import trio.testing
from beamlet.actors import (
    Down,
    ExitSignal,
    From,
    Pid,
    Ref,
    call,
    cast,
    monitor,
    receive,
    self_pid,
    send,
)
from beamlet.actors.lowlevel import BadInputLog, Call
from beamlet.cluster import DNSPoll, NodeDown, NodeUp, export, pg, rpc
from beamlet.cluster.simulation import SimulatedCluster, simulated_cluster
from beamlet.supervisors import Supervisor
from hostile import throw
from hypothesis import given, settings, strategies as st

A, B = "a@a", "b@b"
SERVICES = [
    "beamlet_rpc",
    "beamlet_pg_default",
    "beamlet_discovery",
    "beamlet_introspect",
    "beamlet_kernel_sup",
]


@export(name="tests.services.triple")
def triple(x: int) -> int:
    return 3 * x


@export(name="tests.services.sleeper")
async def sleeper() -> None:
    await trio.sleep_forever()


async def member(group: Any) -> None:
    await pg.join(group)
    await trio.sleep_forever()


def service_pids(sim: SimulatedCluster, short: str) -> dict[str, Pid | None]:
    node = sim.node(short)
    return {name: node.whereis(name) for name in SERVICES}


def sleepers(sim: SimulatedCluster, short: str) -> list[Pid]:
    node = sim.node(short)
    found = []
    for pid in node.processes():
        info = node.process_info(pid)
        if info is not None and "sleeper" in info.function:
            found.append(pid)
    return found


async def until(sim: SimulatedCluster, short: str, group: Any, expected: Counter[Pid]) -> None:
    """Wait until ``pg.members(group)`` on ``short`` is ``expected``."""
    with trio.fail_after(10):
        while True:
            if Counter(await sim.run(short, _members, group)) == expected:
                return
            await trio.sleep(0.05)


async def _members(group: Any) -> list[Pid]:
    return pg.members(group)


# -- the known killers ------------------------------------------------------------------


async def test_an_rpc_request_whose_repr_raises_gets_an_error_reply(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        before = service_pids(sim, "b")

        async def attack() -> Any:
            return await call(("beamlet_rpc", B), 10**5000)

        status, (why, quoted) = await sim.run("a", attack)
        assert (status, why) == ("error", "bad_request")
        assert quoted == "<unrepresentable int>"
        assert service_pids(sim, "b") == before

        async def use() -> Any:
            return await rpc(B, "tests.services.triple", 2)

        assert await sim.run("a", use) == 6


async def test_spawn_linked_to_a_local_pid_that_does_not_exist_starts_nothing(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        node_b = sim.node("b")
        before = service_pids(sim, "b")
        ghost = Pid(B, 10**9, node_b.creation)  # of b, never alive

        async def attack() -> Any:
            return await call(("beamlet_rpc", B), ("spawn", "tests.services.sleeper", (), ghost))

        assert await sim.run("a", attack) == ("error", ("noproc", ghost))
        assert sleepers(sim, "b") == []
        assert service_pids(sim, "b") == before


async def test_spawn_linked_to_a_remote_pid_that_does_not_exist_is_cleaned_up(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        node_a = sim.node("a")
        ghost = Pid(A, 10**9, node_a.creation)  # of a, never alive

        async def attack() -> Any:
            status, pid = await call(
                ("beamlet_rpc", B), ("spawn", "tests.services.sleeper", (), ghost)
            )
            assert status == "ok"
            ref = monitor(pid)
            return await receive(lambda m: isinstance(m, Down) and m.ref == ref, timeout=5)

        down = await sim.run("a", attack)
        assert down.reason == "noproc"  # the link failed, so the new process went
        assert sleepers(sim, "b") == []


async def test_a_call_to_the_pg_scope_with_a_bad_request_gets_an_error_reply(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        before = service_pids(sim, "b")

        async def attack() -> list[Any]:
            answers = []
            for request in [
                5,
                (),
                ("join",),
                ("join", ["unhashable"], [self_pid()]),
                ("join", "g", "not pids"),
                ("join", "g", [self_pid()]),  # a pid of another node
                ("leave", "g", [Pid(B, 1, 1)]),  # not a pid of this incarnation
                ("monitor", "g", "not a pid"),
                ("demonitor", "not a ref"),
                ("unknown", 1),
            ]:
                answers.append(await call(("beamlet_pg_default", B), request))
            return answers

        answers = await sim.run("a", attack)
        assert all(a[0] == "error" for a in answers), answers
        assert service_pids(sim, "b") == before
        pb = sim.spawn("b", member, "g")
        pa = sim.spawn("a", member, "g")

        await until(sim, "b", "g", Counter([pa, pb]))


async def test_casts_and_stray_messages_are_dropped_not_fatal(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        before = service_pids(sim, "b")

        async def attack() -> None:
            for name in SERVICES:
                for _ in range(50):
                    cast((name, B), ("junk", 1))
                    send((name, B), "stray")

        with caplog.at_level(logging.WARNING):
            await sim.run("a", attack)
            await trio.sleep(1)
        assert service_pids(sim, "b") == before
        # Logged, but not once per message: at most a line per service and kind.
        lines = [r for r in caplog.records if "refused" in r.getMessage()]
        assert 1 <= len(lines) <= 2 * len(SERVICES)


async def test_discovery_answers_a_call_with_an_error(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:

        async def ask() -> Any:
            return await call(("beamlet_discovery", B), "hello", timeout=5)

        assert await sim.run("a", ask) == ("error", ("bad_request", "'hello'"))


async def test_malformed_supervisor_calls_do_not_stop_the_kernel(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        before = service_pids(sim, "b")

        async def attack() -> list[Any]:
            answers = []
            for request in [
                ("start_child",),
                ("start_child", "not a spec"),
                ("terminate_child",),
                ("terminate_child", ["unhashable"]),
                ("restart_child", ["unhashable"]),
                ("delete_child", {"x": 1}),
                ("which_children", "extra"),
                7,
            ]:
                try:
                    answers.append(await call(("beamlet_kernel_sup", B), request))
                except Exception as exc:
                    answers.append(exc)
            return answers

        answers = await sim.run("a", attack)
        assert len(answers) == 8
        assert service_pids(sim, "b") == before
        assert sim.running() == ["a", "b"]


async def test_bad_input_log_is_rate_limited(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    log = BadInputLog("svc", logging.getLogger("tests.bad_input"), period=10.0)
    with caplog.at_level(logging.WARNING, logger="tests.bad_input"):
        assert log.report("call", 10**5000) is True
        for _ in range(5):
            assert log.report("message", "junk", "unexpected") is False
        await trio.sleep(10)
        assert log.report("cast", ("x",)) is True
    first, second = [r.getMessage() for r in caplog.records]
    assert first == "svc refused a malformed call: <unrepresentable int>"
    assert second == "svc refused a malformed cast: ('x',) (5 more since the last report)"


# -- any term -------------------------------------------------------------------------

_ALPHABET = "xyzé0 "  # cannot spell a node, group, child or export of the test
_names = st.text(alphabet=_ALPHABET, max_size=6)
_pids = st.builds(
    Pid, st.sampled_from([A, B, "x@y"]), st.integers(0, 2**40), st.integers(1, 2**32 - 1)
)
_refs = st.builds(
    Ref, st.sampled_from([A, B, "x@y"]), st.integers(0, 2**40), st.integers(1, 2**32 - 1)
)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**64, -(2**200), 10**4000]),  # big ints (10**5000: see above)
    st.floats(allow_nan=True),
    _names,
    st.binary(max_size=8),
    _pids,
    _refs,
)
_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.one_of(_names, st.integers()), inner, max_size=3),
    ),
    max_leaves=12,
)
_tags = st.sampled_from(
    [
        "call",
        "spawn",
        "join",
        "leave",
        "monitor",
        "demonitor",
        "discover",
        "sync",
        "which_children",
        "count_children",
        "start_child",
        "terminate_child",
        "restart_child",
        "delete_child",
        "node_info",
        "processes",
        "process_info",
    ]
)
_shaped = st.one_of(
    st.tuples(_tags, st.lists(_values, max_size=4)).map(lambda t: (t[0], *t[1])),
    st.tuples(_tags, _names, _values, st.one_of(st.none(), _pids)),
    st.builds(NodeUp, _names),
    st.builds(NodeDown, _names, _values),
    st.builds(Down, _refs, _values, _values),
    st.builds(ExitSignal, _pids, _values),
    st.builds(Call, st.builds(From, _pids, _refs), _values),
)
_terms = st.one_of(_values, _shaped)
_actions = st.lists(
    st.tuples(
        st.sampled_from(SERVICES),
        st.sampled_from(["call", "cast", "send"]),
        st.sampled_from(["a", "b"]),  # from another node, or from the same
        _terms,
    ),
    min_size=1,
    max_size=12,
)


async def _scenario(actions: list[tuple[str, str, str, Any]]) -> None:
    polls: list[float] = []

    async def resolver(query: str) -> list[str]:
        polls.append(trio.current_time())
        return []

    dns = DNSPoll("cluster.internal", 4370, interval=5.0, resolver=resolver)
    async with simulated_cluster(["a", "b"], discovery=[dns]) as sim:
        pa = sim.spawn("a", member, "pre")
        pb = sim.spawn("b", member, "pre")
        await until(sim, "a", "pre", Counter([pa, pb]))
        before = service_pids(sim, "b")
        assert None not in before.values()

        for service, how, source, term in actions:
            await sim.run(source, throw, (service, B), how, term)
        await trio.sleep(1)

        # Alive, with the same pids: nothing crashed, nothing was restarted.
        assert service_pids(sim, "b") == before
        assert sim.running() == ["a", "b"]

        async def children() -> list[Any]:
            return [c.pid for c in await Supervisor.which_children("beamlet_kernel_sup")]

        assert await sim.run("b", children) == [
            before["beamlet_rpc"],
            before["beamlet_pg_default"],
            before["beamlet_discovery"],
            before["beamlet_introspect"],
        ]
        # And still correct: rpc answers, pg kept its members and takes new ones,
        # discovery keeps polling.
        assert await sim.run("a", _rpc) == 12
        for short in "ab":
            assert Counter(await sim.run(short, _members, "pre")) == Counter([pa, pb])
        pb2 = sim.spawn("b", member, "post")
        await until(sim, "a", "post", Counter([pb2]))
        polled = len(polls)
        await trio.sleep(5)
        assert len(polls) > polled


async def _rpc() -> Any:
    return await rpc(B, "tests.services.triple", 4)


@settings(max_examples=30)
@given(actions=_actions)
def test_system_services_survive_any_term(actions: list[tuple[str, str, str, Any]]) -> None:
    trio.run(_scenario, actions, clock=trio.testing.MockClock(autojump_threshold=0))
