"""Errors at the public boundary of the local runtime come out as themselves.

Trio wraps what leaves a nursery in an ``ExceptionGroup``; ``open_node`` and
``run`` raise a single failure as its own type, and keep a group only for
several concurrent failures.
"""

from __future__ import annotations

import pytest
import trio
from beamlet.actors import open_node, run, spawn
from beamlet.actors._util import sole_exception
from beamlet.actors.lowlevel import raise_single


async def test_an_error_raised_in_the_open_node_block_comes_out_as_itself() -> None:
    with pytest.raises(KeyError) as info:
        async with open_node():
            raise KeyError("boo")
    assert type(info.value) is KeyError
    assert info.value.args == ("boo",)


async def test_an_error_in_the_block_comes_out_alone_while_processes_run() -> None:
    async def forever() -> None:
        await trio.sleep_forever()

    with pytest.raises(ValueError, match="bad value") as info:
        async with open_node():
            spawn(forever)
            spawn(forever)
            await trio.lowlevel.checkpoint()
            raise ValueError("bad value")
    assert type(info.value) is ValueError


async def test_the_block_error_keeps_its_own_cause() -> None:
    with pytest.raises(RuntimeError) as info:
        async with open_node():
            try:
                {}["k"]
            except KeyError as exc:
                raise RuntimeError("wrapped") from exc
    assert isinstance(info.value.__cause__, KeyError)


async def test_cancelling_around_open_node_still_works() -> None:
    with trio.move_on_after(0.01) as scope:
        async with open_node():
            await trio.sleep_forever()
    assert scope.cancelled_caught


def test_run_raises_mains_error_as_itself() -> None:
    async def main() -> None:
        raise LookupError("nope")

    with pytest.raises(LookupError, match="nope") as info:
        run(main)
    assert type(info.value) is LookupError


def test_run_names_a_misspelt_option() -> None:
    async def main() -> None:
        pass

    with pytest.raises(TypeError, match="'watchdog_treshold'"):
        run(main, watchdog_treshold=1.0)  # type: ignore[call-arg]


def test_run_rejects_a_bad_option_value_as_itself() -> None:
    async def main() -> None:
        pass

    with pytest.raises(ValueError, match="watchdog_threshold"):
        run(main, watchdog_threshold=-1.0)


def test_sole_exception_looks_through_nested_single_groups() -> None:
    leaf = OSError(98, "in use")
    assert sole_exception(leaf) is leaf
    assert sole_exception(ExceptionGroup("a", [ExceptionGroup("b", [leaf])])) is leaf
    assert sole_exception(ExceptionGroup("a", [leaf, ValueError()])) is None
    assert sole_exception(ExceptionGroup("a", [ExceptionGroup("b", [leaf, KeyError()])])) is None


def test_raise_single_raises_the_leaf_with_its_own_chain() -> None:
    cause = KeyError("cause")
    leaf = ValueError("leaf")
    leaf.__cause__ = cause
    group = ExceptionGroup("outer", [ExceptionGroup("inner", [leaf])])
    with pytest.raises(ValueError) as info:
        try:
            raise group
        except BaseExceptionGroup as caught:
            raise_single(caught)
            raise
    assert info.value is leaf
    assert leaf.__cause__ is cause
    assert leaf.__context__ is None


def test_raise_single_leaves_several_failures_in_their_group() -> None:
    group = ExceptionGroup("two", [ValueError("a"), KeyError("b")])
    with pytest.raises(ExceptionGroup) as info:
        try:
            raise group
        except BaseExceptionGroup as caught:
            raise_single(caught)
            raise
    assert info.value is group
