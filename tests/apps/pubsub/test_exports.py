"""The public surface of beamlet.apps.pubsub."""

from __future__ import annotations

import inspect

import beamlet.apps.pubsub as pubsub
import beamlet.apps.pubsub.testing as testing

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
    assert sorted(pubsub.__all__) == sorted(DESIGN_NAMES)
    for name in DESIGN_NAMES:
        assert hasattr(pubsub, name), name


def test_every_public_name_says_where_it_lives_and_is_documented() -> None:
    for name in pubsub.__all__:
        value = getattr(pubsub, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__ == "beamlet.apps.pubsub", name
            assert inspect.getdoc(value), name


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
    assert testing.__all__ == ["CHECKS", "ClusterLike", "check_pubsub_adapter"]
    assert inspect.iscoroutinefunction(testing.check_pubsub_adapter)
