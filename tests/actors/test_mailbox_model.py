"""Property: the mailbox behaves exactly like Erlang's selective receive (P4, P6, P7, P8).

A driver process sends tagged messages to a receiver in bursts; between bursts
it lets everything settle. The receiver runs a script of receives, each with a
set of tags to match (or no match at all), either waiting (``timeout=None``) or
only checking the mailbox (``timeout=0``). The results and the messages left
over must be those of a pure model of Erlang's receive.
"""

from __future__ import annotations

from typing import Any

import trio.testing
from beamlet.actors import ReceiveTimeoutError, receive, run, self_pid, send, spawn
from hypothesis import given, settings, strategies as st

TAGS = "abc"

Message = tuple[str, int]
Recv = tuple[str, frozenset[str] | None]  # ("wait" | "poll", tags or None for any)


def model(ops: list[str], script: list[Recv]) -> tuple[list[Message | None], list[Message]]:
    """Erlang's receive, on a list: what each receive returns and what is left."""
    mailbox: list[Message] = []
    results: list[Message | None] = []
    step = 0

    def run_receiver() -> None:
        nonlocal step
        while step < len(script):
            kind, tags = script[step]
            index = next(
                (i for i, m in enumerate(mailbox) if tags is None or m[0] in tags),
                None,
            )
            if index is None:
                if kind == "wait":
                    return  # blocked until a matching message arrives
                results.append(None)
            else:
                results.append(mailbox.pop(index))
            step += 1

    seq = 0
    for op in ops:
        if op == "settle":
            run_receiver()
        else:
            mailbox.append((op, seq))
            seq += 1
    run_receiver()
    return results, mailbox


async def receiver(driver: Any, script: list[Recv]) -> None:
    results: list[Message | None] = []
    for kind, tags in script:
        if tags is None:
            match = None
        else:

            def match(m: Message, tags: frozenset[str] = tags) -> bool:
                return m[0] == "stop" or m[0] in tags

        try:
            msg = await receive(match, timeout=0 if kind == "poll" else None)
        except ReceiveTimeoutError:
            results.append(None)
            continue
        if msg[0] == "stop":
            break
        results.append(msg)
    else:
        await receive(lambda m: m[0] == "stop")
    leftover = []
    while True:
        try:
            leftover.append(await receive(timeout=0))
        except ReceiveTimeoutError:
            break
    send(driver, (results, leftover))


async def drive(ops: list[str], script: list[Recv]) -> Any:
    pid = spawn(receiver, self_pid(), script)
    seq = 0
    for op in ops:
        if op == "settle":
            await trio.testing.wait_all_tasks_blocked()
        else:
            send(pid, (op, seq))
            seq += 1
    await trio.testing.wait_all_tasks_blocked()
    send(pid, ("stop", -1))
    return await receive()


ops_strategy = st.lists(st.sampled_from([*TAGS, "settle"]), max_size=40)
script_strategy = st.lists(
    st.tuples(
        st.sampled_from(["wait", "poll"]),
        st.none() | st.frozensets(st.sampled_from(TAGS), min_size=1),
    ),
    max_size=15,
)


@settings(max_examples=150)
@given(ops=ops_strategy, script=script_strategy)
def test_selective_receive_matches_the_reference_model(ops: list[str], script: list[Recv]) -> None:
    results, leftover = run(drive, ops, script, watchdog_threshold=None)
    expected_results, expected_leftover = model(ops, script)
    assert results == expected_results
    assert leftover == expected_leftover


async def self_mail(ops: list[tuple[str, Any]]) -> list[Any]:
    me = self_pid()
    out: list[Any] = []
    for kind, arg in ops:
        if kind == "send":
            send(me, arg)
        else:
            try:
                out.append(await receive(lambda m, tags=arg: m[0] in tags, timeout=0))
            except ReceiveTimeoutError:
                out.append(None)
    while True:
        try:
            out.append(await receive(timeout=0))
        except ReceiveTimeoutError:
            return out


@settings(max_examples=100)
@given(
    ops=st.lists(
        st.tuples(st.just("send"), st.tuples(st.sampled_from(TAGS), st.integers(0, 9)))
        | st.tuples(st.just("recv"), st.frozensets(st.sampled_from(TAGS), min_size=1)),
        max_size=40,
    )
)
def test_receiving_from_ones_own_mailbox_matches_the_model(ops: list[tuple[str, Any]]) -> None:
    mailbox: list[Any] = []
    expected: list[Any] = []
    for kind, arg in ops:
        if kind == "send":
            mailbox.append(arg)
        else:
            index = next((i for i, m in enumerate(mailbox) if m[0] in arg), None)
            expected.append(None if index is None else mailbox.pop(index))
    expected.extend(mailbox)
    assert run(self_mail, ops, watchdog_threshold=None) == expected
