"""1,000 restarts of a node inside the permdown window: nothing grows (Phoenix issue #179).

Each restart is a new incarnation of the node's shard. The others forget the
previous one as soon as the new one's heartbeat arrives, and down replicas
are never advertised, so the state, the heartbeats and a full transfer stay
the same size however many incarnations came and went.
"""

from __future__ import annotations

import gc
import sys
import types
from typing import Any

from beamlet.apps.presence._messages import Heartbeat
from beamlet.apps.presence._tracker import TrackerCore, TrackerOptions
from beamlet.cluster import encode
from presence_sim import SimNet

OPTIONS = TrackerOptions()  # Phoenix's defaults: down 30 s, permdown 20 min
RESTARTS = 1000
RESTART_EVERY = 1.0  # 1,000 restarts in 1,000 s, inside the 1,200 s permdown window


def deep_size(root: object) -> int:
    """Bytes held by ``root`` and everything it reaches (classes and modules excluded)."""
    seen: set[int] = set()
    stack = [root]
    total = 0
    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def footprint(core: TrackerCore) -> dict[str, Any]:
    state = core.state
    everyone = {r: 0 for r in state.context}
    return {
        "replica records": len(core.replicas),
        "known replicas": len(state.context),
        "cloud dots": sum(len(state.cloud(r)) for r in state.context),
        "presences stored": state.size(),
        "generation sections": sum(len(g.sections) for g in core.generations),
        "generation size": sum(g.size() for g in core.generations),
        "empty heartbeat bytes": len(encode(Heartbeat(core.replica, state.clocks(), None))),
        "full transfer bytes": len(encode(state.extract(("probe", 0), everyone).to_wire())),
    }


def test_1000_restarts_inside_the_permdown_window_keep_everything_bounded() -> None:
    net = SimNet(OPTIONS)
    net.start("a")
    net.start("c", jitter=0.5)
    for i in range(10):
        net.track("a", net.pid("a"), "lobby", f"a{i}", {"n": i})
    baseline: dict[str, dict[str, Any]] = {}
    baseline_bytes: dict[str, int] = {}
    for k in range(RESTARTS):
        if "b" in net.cores:
            net.kill("b")  # a crash: no goodbye
        net.start("b")
        net.heal()
        if k % 3 == 0:
            net.partition({"b"}, {"c"})  # c never hears of this incarnation
        for i in range(5):
            net.track("b", net.pid("b"), "lobby", f"b{i}", {"n": i})
        net.run(RESTART_EVERY)
        if k == 299:
            baseline = {n: footprint(net.cores[n]) for n in "ac"}
            baseline_bytes = {n: deep_size(net.cores[n]) for n in "ac"}
    assert net.now < OPTIONS.permdown_period
    # Every restart was noticed at once: each old incarnation was forgotten.
    downs = [ev for name, ev, _ in net.events if name == "a" and ev.kind == "permdown"]
    assert len(downs) == RESTARTS - 1
    for name in "ac":
        core = net.cores[name]
        assert footprint(core) == baseline[name], name
        assert deep_size(core) <= baseline_bytes[name] * 1.1, name
        assert footprint(core)["known replicas"] <= 3
        assert len(core._pending_clocks) <= 2
        b_keys = {key for key, _ in net.listed(name, "lobby") if key.startswith("b")}
        assert b_keys <= {f"b{i}" for i in range(5)}
    # a lists its own ten and the live incarnation's five: no zombies.
    assert len(net.cores["a"].state.online_list()) == 15
