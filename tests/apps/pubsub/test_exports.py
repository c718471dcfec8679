"""The public surface of beamlet.apps.pubsub."""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path

import beamlet.apps.pubsub as pubsub
import beamlet.apps.pubsub.testing as testing
from export_checks import check_documented, check_homes, check_public_names

REPO = Path(__file__).resolve().parents[3]

DESIGN_NAMES = [
    "PubSub",
    "subscribe",
    "unsubscribe",
    "broadcast",
    "broadcast_from",
    "local_broadcast",
    "local_broadcast_from",
    "direct_broadcast",
    "node_name",
    "stats",
    "dispatcher",
    "Adapter",
    "AdapterConfig",
    "ADAPTERS",
    "DEFAULT_DISPATCHER",
    "UnknownPubSubError",
    "UnknownDispatcherError",
    "default_dispatch",
    "shard_for",
]


def test_the_designed_names_are_exported() -> None:
    check_public_names(pubsub, DESIGN_NAMES)


def test_every_public_name_says_where_it_lives_and_is_documented() -> None:
    # The functions are also PubSub's methods (qualname PubSub.name), so only their home is checked.
    check_homes(pubsub, DESIGN_NAMES, qualnames=False)
    check_documented(pubsub, DESIGN_NAMES)


def test_the_pubsub_class_carries_the_functions() -> None:
    for name in ["subscribe", "broadcast", "direct_broadcast", "node_name", "stats"]:
        assert getattr(pubsub.PubSub, name) is getattr(pubsub, name)


def test_the_adapter_interface_is_small_and_documented() -> None:
    abstract = sorted(pubsub.Adapter.__abstractmethods__)
    assert abstract == ["broadcast", "child_spec", "direct_broadcast", "node_name"]
    doc = inspect.getdoc(pubsub.Adapter) or ""
    for topic in ["Selection", "Supervision", "Sending", "Errors in the caller", "Receiving"]:
        assert f"**{topic}" in doc, topic


def test_the_conformance_suite_is_public() -> None:
    assert testing.__all__ == [
        "CHECKS",
        "ClusterLike",
        "Outage",
        "Partition",
        "check_pubsub_adapter",
    ]
    assert inspect.iscoroutinefunction(testing.check_pubsub_adapter)
    assert "outage" in testing.CHECKS
    assert inspect.getdoc(testing.Outage) and inspect.getdoc(testing.Partition)


def test_the_redis_adapter_is_the_redis_extra() -> None:
    """``pip install 'beamlet[redis]'`` brings coredis; a plain install does not."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert [d.split(">")[0] for d in project["optional-dependencies"]["redis"]] == ["coredis"]
    assert not any("coredis" in d for d in project["dependencies"])
    assert pubsub.ADAPTERS["redis"] == "beamlet.apps.pubsub._redis_adapter:RedisAdapter"
