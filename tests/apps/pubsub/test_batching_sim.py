"""The cluster adapter's batches in the simulation: a lone broadcast leaves at once, the
broadcasts of one scheduling round leave together when the publisher yields (no timer, no
wait behind the shard's mailbox),
within the bounds of a batch, in order, and a bad entry costs only itself."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from beamlet.actors import send, whereis
from beamlet.actors.lowlevel import current_node
from beamlet.apps.pubsub import _cluster, _pubsub, broadcast, direct_broadcast, stats
from beamlet.apps.pubsub._batch import MAX_BATCH_BYTES, MAX_BATCH_ENTRIES, encode_entry, pack_batch
from beamlet.cluster.simulation import simulated_cluster

from .test_cluster_sim import PS, listen, start_pubsub, until_shards

SHARD = f"{PS}.Adapter.0"


def _batches() -> int:
    return stats(PS)["remote_batches"]


async def _round_end(sent: int) -> None:
    """Yield until ``remote_sent`` reaches ``sent``: the shard has sent what waited,
    with no virtual time passing (no timer)."""
    start = trio.current_time()
    for _ in range(1000):
        if stats(PS)["remote_sent"] >= sent:
            break
        await trio.lowlevel.checkpoint()
    else:
        raise AssertionError(f"the shard did not send what waited: {stats(PS)}")
    assert trio.current_time() == start


async def test_a_lone_broadcast_leaves_before_broadcast_returns(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        await start_pubsub(sim, "a", "b")
        await until_shards(sim, "a", {"a@a", "b@b"})
        inbox = await listen(sim, "b")

        async def publish() -> int:
            before = _batches()
            broadcast(PS, "t", "lone")
            return _batches() - before

        start = trio.current_time()
        assert await sim.run("a", publish) == 1  # written by the publisher itself
        await inbox.until("the lone broadcast", lambda items: items == ["lone"], 5)
        assert trio.current_time() == start  # no timer on its way


async def test_a_round_leaves_in_full_batches_then_at_its_end_in_order(
    autojump_clock: Any,
) -> None:
    n = 600  # 1 alone, then 599 in a round: two full batches and the rest
    async with simulated_cluster(["a", "b"]) as sim:
        await start_pubsub(sim, "a", "b")
        await until_shards(sim, "a", {"a@a", "b@b"})
        inbox = await listen(sim, "b")
        messages = [f"{i:04d}" for i in range(n)]  # no byte that could start a container

        async def publish() -> tuple[int, int]:
            before = _batches()
            goal = stats(PS)["remote_sent"] + n
            for m in messages:
                broadcast(PS, "t", m)
            during = _batches() - before  # without yielding
            await _round_end(goal)
            return during, _batches() - before

        start = trio.current_time()
        during, after = await sim.run("a", publish)
        full = (n - 1) // MAX_BATCH_ENTRIES
        assert (during, after) == (1 + full, 1 + full + 1)
        await inbox.until("the round", lambda items: len(items) == n, 5)
        assert inbox.items == messages  # in order across every batch boundary
        assert trio.current_time() == start
        assert (await sim.run("b", _call, stats, PS))["remote_received"] == n


async def _call(fn: Any, *args: Any) -> Any:
    return fn(*args)


async def test_a_batch_stays_within_its_size_in_bytes(autojump_clock: Any) -> None:
    big = "x" * 5000  # about 5 KB an entry: six to a batch
    per_batch = MAX_BATCH_BYTES // len(encode_entry("t", big + "00", "beamlet.pubsub", None))
    async with simulated_cluster(["a", "b"]) as sim:
        await start_pubsub(sim, "a", "b")
        await until_shards(sim, "a", {"a@a", "b@b"})
        inbox = await listen(sim, "b")
        messages = [f"{big}{i:02d}" for i in range(1 + 3 * per_batch + 1)]

        async def publish() -> tuple[int, int]:
            before = _batches()
            goal = stats(PS)["remote_sent"] + len(messages)
            for m in messages:
                broadcast(PS, "t", m)
            during = _batches() - before
            await _round_end(goal)
            return during, _batches() - before

        assert await sim.run("a", publish) == (1 + 3, 1 + 3 + 1)
        await inbox.until("the round", lambda items: len(items) == len(messages), 5)
        assert inbox.items == messages


async def test_a_broadcast_too_large_for_a_batch_goes_alone_in_its_place(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"], max_frame_size=64 * 1024) as sim:
        await start_pubsub(sim, "a", "b")
        await until_shards(sim, "a", {"a@a", "b@b"})
        inbox = await listen(sim, "b")
        large = "L" * (MAX_BATCH_BYTES + 100)  # over a batch, within a frame
        huge = "H" * (100 * 1024)  # over max_frame_size: the caller's error, as ever

        async def publish() -> str:
            broadcast(PS, "t", "m0")  # alone
            broadcast(PS, "t", "m1")  # waits
            broadcast(PS, "t", large)  # m1 leaves, then this, alone
            broadcast(PS, "t", "m2")
            with pytest.raises(ValueError, match="max_size") as caught:
                broadcast(PS, "t", huge)
            broadcast(PS, "t", "m3")
            await _round_end(stats(PS)["remote_sent"] + 1)
            return str(caught.value)

        error = await sim.run("a", publish)
        assert "65536" in error
        await inbox.until("all but the huge one", lambda items: len(items) == 5, 5)
        assert inbox.items == ["m0", "m1", large, "m2", "m3"]


async def test_direct_broadcast_comes_after_the_publishers_waiting_broadcasts(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b", "c"]) as sim:
        await start_pubsub(sim, "a", "b", "c")
        await until_shards(sim, "a", {"a@a", "b@b", "c@c"})
        b, c = await listen(sim, "b"), await listen(sim, "c")

        async def publish() -> None:
            broadcast(PS, "t", 1)  # alone
            broadcast(PS, "t", 2)  # waits for the round's end...
            direct_broadcast("b@b", PS, "t", 3)  # ... or for this

        await sim.run("a", publish)
        await b.until("in order", lambda items: len(items) == 3, 5)
        assert b.items == [1, 2, 3]
        await c.until("c", lambda items: len(items) == 2, 5)
        assert c.items == [1, 2]


async def test_an_undecodable_entry_is_refused_and_the_others_delivered(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        await start_pubsub(sim, "a", "b")
        await until_shards(sim, "a", {"a@a", "b@b"})
        inbox = await listen(sim, "b")
        unknown_type = b"\xa1t" + b"\xd4\x64\x00"  # extension type 100: no node knows it
        bad_head = encode_entry("t", "x", "beamlet.pubsub", None).replace(b"\xa1t", b"\x07", 1)
        blob = pack_batch(
            [
                encode_entry("t", "first", "beamlet.pubsub", None),
                unknown_type,
                encode_entry("t", "second", "no.such.dispatcher", None),
                bad_head,
                encode_entry("t", "third", "beamlet.pubsub", None),
            ]
        )

        async def throw() -> None:
            send((SHARD, "b@b"), blob)

        await sim.run("a", throw)
        await inbox.until("the good entries", lambda items: len(items) == 2, 5)
        assert inbox.items == ["first", "third"]
        assert (await sim.run("b", _call, stats, PS))["bad_input"] == 3
        refused = [r.getMessage() for r in caplog.records if r.name == "beamlet.apps.pubsub"]
        assert len(refused) == 1 and "undecodable batch entry" in refused[0]


async def test_a_batch_far_over_the_bounds_is_refused_undecoded_and_the_shard_serves_on(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[int] = []
    real_unpack = _cluster.unpack_batch

    def unpack(blob: bytes) -> Any:
        decoded.append(len(blob))
        return real_unpack(blob)

    monkeypatch.setattr(_cluster, "unpack_batch", unpack)
    async with simulated_cluster(["a", "b"], max_frame_size=1024 * 1024) as sim:
        await start_pubsub(sim, "a", "b")
        await until_shards(sim, "a", {"a@a", "b@b"})
        inbox = await listen(sim, "b")
        # One topic each: the fan-out of what is accepted looks each one up.
        many = pack_batch([encode_entry(f"t{i}", i, "beamlet.pubsub", None) for i in range(20_000)])
        big = pack_batch([encode_entry("t", "x" * 30_000, "beamlet.pubsub", None)] * 3)
        alone = encode_entry("t", "y" * (3 * MAX_BATCH_BYTES), "beamlet.pubsub", None)

        async def throw() -> None:
            send((SHARD, "b@b"), many)  # 20000 entries, over 512
            send((SHARD, "b@b"), big)  # 3 entries in 90 KB, over 64 KiB
            send((SHARD, "b@b"), pack_batch([alone]))  # one large entry: accepted
            broadcast(PS, "t", "after")

        start = trio.current_time()
        await sim.run("a", throw)
        await inbox.until("what is accepted", lambda items: len(items) == 2, 5)
        assert inbox.items == ["y" * (3 * MAX_BATCH_BYTES), "after"]
        assert trio.current_time() == start
        got = await sim.run("b", _call, stats, PS)
        assert (got["bad_input"], got["remote_received"]) == (2, 2)
        after = encode_entry("t", "after", "beamlet.pubsub", None)
        assert decoded == [len(pack_batch([alone])), len(pack_batch([after]))]  # no others
        refused = [r.getMessage() for r in caplog.records if r.name == "beamlet.apps.pubsub"]
        assert len(refused) == 1  # rate-limited: one line for both
        assert "refused an oversized (20000 entries, over 512) batch" in refused[0]


async def test_a_round_leaves_in_the_next_scheduling_round_whatever_the_shard_has_queued(
    autojump_clock: Any,
) -> None:
    backlog = 5000
    async with simulated_cluster(["a", "b"]) as sim:
        await start_pubsub(sim, "a", "b")
        await until_shards(sim, "a", {"a@a", "b@b"})
        inbox = await listen(sim, "b")
        noise = pack_batch([encode_entry("nobody", 0, "beamlet.pubsub", None)])

        async def publish() -> tuple[int, int]:
            shard = current_node().lookup(whereis(SHARD))
            for _ in range(backlog):  # as if other nodes had sent it that much
                send(SHARD, noise)
            sent = stats(PS)["remote_sent"]
            broadcast(PS, "t", 1)  # alone: opens a round
            await trio.lowlevel.checkpoint()
            broadcast(PS, "t", 2)  # alone, or in the round (Trio picks the order)
            broadcast(PS, "t", 3)  # waits for the flusher
            # The flusher runs in the next scheduling round, in any order with
            # this publisher: after two yields, what waited has left.
            await trio.lowlevel.checkpoint()
            await trio.lowlevel.checkpoint()
            return stats(PS)["remote_sent"] - sent, shard.message_queue_len

        start = trio.current_time()
        sent, queued = await sim.run("a", publish)
        assert sent == 3
        assert queued > backlog // 2  # while the shard still works through its mailbox
        await inbox.until("in order", lambda items: len(items) == 3, 5)
        assert inbox.items == [1, 2, 3]
        assert trio.current_time() == start


async def test_publishers_of_one_shard_keep_their_order_across_rounds(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        await start_pubsub(sim, "a", "b")
        await until_shards(sim, "a", {"a@a", "b@b"})
        inbox = await listen(sim, "b")
        done = trio.Event()

        async def publisher(name: str, yields: list[int]) -> None:
            for i, n in enumerate(yields):
                broadcast(PS, "t", (name, i))
                for _ in range(n):
                    await trio.lowlevel.checkpoint()

        patterns = {"p": [0, 1, 0, 0, 2, 0, 1, 1, 0, 3] * 5, "q": [1, 0, 2, 0, 0, 0, 1] * 7}

        async def publish() -> None:
            async with trio.open_nursery() as nursery:
                for name, yields in patterns.items():
                    nursery.start_soon(publisher, name, yields)
            done.set()

        sim.spawn("a", publish)
        await done.wait()
        total = sum(len(y) for y in patterns.values())
        await inbox.until("all", lambda items: len(items) == total, 5)
        for name, yields in patterns.items():
            assert [i for n, i in inbox.items if n == name] == list(range(len(yields)))


async def test_a_batch_follows_the_frame_limit_of_the_distribution_it_finds(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"], max_frame_size=4096) as sim:
        await start_pubsub(sim, "a", "b")
        await until_shards(sim, "a", {"a@a", "b@b"})
        inbox = await listen(sim, "b")
        messages = [f"{i:03d}" + "m" * 600 for i in range(20)]

        async def publish(stale: bool) -> int:
            if stale:  # as a PubSub started before distribution would have it
                box = _cluster_adapter().outboxes[0]
                broadcast(PS, "t", "opens")
                box.batch.max_bytes = MAX_BATCH_BYTES
            before = _batches()
            goal = stats(PS)["remote_sent"] + len(messages)
            for m in messages:
                broadcast(PS, "t", m)  # never raises for the batch's size
            await _round_end(goal)
            return _batches() - before

        # Half of 4096 a batch: three of these entries each.
        assert await sim.run("a", publish, False) == 1 + (len(messages) - 1 + 2) // 3
        await inbox.until("the round", lambda items: len(items) == 20, 5)
        # A limit over the frame's: the batch leaves an entry at a time, in order.
        assert await sim.run("a", publish, True) == len(messages)
        await inbox.until("both rounds", lambda items: len(items) == 41, 5)
        assert inbox.items == [*messages, "opens", *messages]
        assert (await sim.run("a", _call, stats, PS))["bad_input"] == 0


def _cluster_adapter() -> Any:
    return _pubsub._state(PS).adapter
