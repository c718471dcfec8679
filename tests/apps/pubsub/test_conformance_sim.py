"""The conformance suite against the cluster adapter, in the simulation."""

from __future__ import annotations

from typing import Any

import pytest
from beamlet.apps.pubsub.testing import CHECKS, Partition, check_pubsub_adapter
from beamlet.cluster.simulation import simulated_cluster

#: Seconds between ticks: a partition is noticed within a few of them.
TICKTIME = 4.0


async def test_cluster_adapter_conforms(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b", "c"], ticktime=TICKTIME) as sim:
        await check_pubsub_adapter(sim, ["a", "b", "c"], outage=Partition(sim))


async def test_cluster_adapter_conforms_with_several_shards(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"], ticktime=TICKTIME) as sim:
        await check_pubsub_adapter(
            sim, ["a", "b"], outage=Partition(sim), pool_size=4, broadcast_pool_size=3
        )


@pytest.mark.parametrize("check", CHECKS)
async def test_each_check_alone(check: str, autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"], ticktime=TICKTIME) as sim:
        await check_pubsub_adapter(sim, ["a", "b"], checks=[check], outage=Partition(sim))


async def test_the_outage_check_is_never_skipped_silently(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        with pytest.raises(ValueError, match="outage=") as raised:
            await check_pubsub_adapter(sim, ["a", "b"])
        assert "checks=[c for c in CHECKS if c != 'outage']" in str(raised.value)
        with pytest.raises(ValueError, match="unknown conformance checks"):
            await check_pubsub_adapter(sim, ["a", "b"], checks=["no_such_check"])


# -- the suite can fail -------------------------------------------------------------------

from beamlet.apps.pubsub import Adapter, AdapterConfig  # noqa: E402
from beamlet.apps.pubsub._cluster import ClusterAdapter  # noqa: E402
from beamlet.cluster import encode, nodes  # noqa: E402


class _Deaf(ClusterAdapter):
    """Sends nothing to other nodes (but checks messages as it should)."""

    def broadcast(self, topic: str, message: Any, dispatcher: str, from_pid: Any) -> None:
        encode(message)


class _Unordered(ClusterAdapter):
    """Picks a shard per message, not per publisher: order breaks across shards."""

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__(config)
        self.turn = 0

    def _shard(self) -> int:
        self.turn += 1
        return self.turn % self.config.broadcast_pool_size


class _Careless(ClusterAdapter):
    """Never checks that a message can be encoded when no node is connected."""

    def broadcast(self, topic: str, message: Any, dispatcher: str, from_pid: Any) -> None:
        try:
            super().broadcast(topic, message, dispatcher, from_pid)
        except TypeError:
            pass


class _Loud(ClusterAdapter):
    """Raises in the publisher when no other node is connected: not at-most-once."""

    def broadcast(self, topic: str, message: Any, dispatcher: str, from_pid: Any) -> None:
        super().broadcast(topic, message, dispatcher, from_pid)
        if not nodes():
            raise ConnectionError("no other node")


@pytest.mark.parametrize(
    ("adapter", "check", "options", "words"),
    [
        (_Deaf, "broadcast_everywhere", {}, "ready"),
        (_Unordered, "order_per_publisher", {"pool_size": 2}, "order"),
        (_Careless, "bad_input", {}, "unencodable"),
        (_Careless, "outage", {}, "unencodable"),
        (_Loud, "outage", {}, "raised"),
    ],
)
async def test_the_suite_catches_a_broken_adapter(
    adapter: type[Adapter], check: str, options: dict[str, Any], words: str, autojump_clock: Any
) -> None:
    async with simulated_cluster(["a", "b"], ticktime=TICKTIME) as sim:
        with pytest.raises(AssertionError, match=words):
            await check_pubsub_adapter(
                sim, ["a", "b"], adapter=adapter, checks=[check], outage=Partition(sim), **options
            )
