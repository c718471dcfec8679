"""The pure core: shard choice by publisher."""

from __future__ import annotations

from beamlet.actors import Pid
from beamlet.apps.pubsub import shard_for
from hypothesis import given, strategies as st

pids = st.builds(
    Pid, st.sampled_from(["a@a", "b@b"]), st.integers(0, 2**40), st.integers(1, 2**32 - 1)
)


@given(pid=pids, n=st.integers(1, 64))
def test_a_publisher_always_uses_one_shard_in_range(pid: Pid, n: int) -> None:
    shard = shard_for(pid, n)
    assert 0 <= shard < n
    assert shard_for(Pid(pid.node, pid.id, pid.creation), n) == shard  # equal pids, same shard


@given(n=st.integers(1, 64))
def test_code_outside_a_process_uses_shard_zero(n: int) -> None:
    assert shard_for(None, n) == 0


@given(n=st.integers(2, 16), start=st.integers(0, 2**30))
def test_consecutive_publishers_spread_over_every_shard(n: int, start: int) -> None:
    shards = {shard_for(Pid("a@a", start + i, 1), n) for i in range(n)}
    assert shards == set(range(n))
