"""Child specifications and supervisor flags (S1, S2, S20; scenarios 6, 7, 8)."""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest
from beamlet.actors import GenServer, Node, StartError, receive, spawn_link, trap_exits
from beamlet.supervisors import ChildSpec, Supervisor, SupervisorSpec, worker
from beamlet.supervisors._spec import SpawnLink


async def idle() -> None:
    await receive()


async def start_idle() -> Any:
    return spawn_link(idle)


class Server(GenServer):
    async def init(self, arg: Any = None) -> None:
        self.arg = arg


def test_S1_defaults_for_a_worker_and_a_supervisor() -> None:
    spec = ChildSpec("w", start_idle)
    assert (spec.args, spec.restart, spec.shutdown, spec.type) == ((), "permanent", 5.0, "worker")
    assert ChildSpec("s", start_idle, type="supervisor").shutdown == "infinity"
    assert ChildSpec("s", start_idle, shutdown=1, type="supervisor").shutdown == 1


def test_S1_specs_are_frozen_values() -> None:
    spec = ChildSpec("w", start_idle, args=[1, 2])
    assert spec.args == (1, 2)
    assert spec == ChildSpec("w", start_idle, args=(1, 2))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        spec.restart = "temporary"  # type: ignore[misc]
    assert attrs.evolve(spec, restart="temporary").restart == "temporary"


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("restart", "sometimes", ValueError),
        ("restart", None, ValueError),
        ("shutdown", -10, ValueError),
        ("shutdown", -0.5, ValueError),
        ("shutdown", math.nan, ValueError),
        ("shutdown", "5000", ValueError),
        ("shutdown", True, TypeError),
        ("shutdown", [5], TypeError),
        ("type", "daemon", ValueError),
        ("start", "not callable", TypeError),
        ("id", ["unhashable"], TypeError),
        ("args", "abc", TypeError),
    ],
)
def test_S1_invalid_fields_name_the_field_and_the_value(
    field: str, value: object, error: type
) -> None:
    fields: dict[str, Any] = {"id": "w", "start": start_idle, field: value}
    with pytest.raises(error) as info:
        ChildSpec(**fields)
    assert field in str(info.value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("shutdown", [0, 0.5, 5, "brutal_kill", "infinity", math.inf])
def test_S1_valid_shutdown_values(shutdown: Any) -> None:
    assert ChildSpec("w", start_idle, shutdown=shutdown).shutdown == shutdown


def test_sup_start_map_fills_in_defaults() -> None:
    spec = ChildSpec.from_mapping({"id": "w", "start": start_idle})
    assert spec == ChildSpec("w", start_idle, (), "permanent", 5.0, "worker")
    sup = ChildSpec.from_mapping({"id": "s", "start": start_idle, "type": "supervisor"})
    assert sup.shutdown == "infinity"


def test_sup_start_map_faulty_specs() -> None:
    with pytest.raises(ValueError, match="'id'"):
        ChildSpec.from_mapping({"start": start_idle})
    with pytest.raises(ValueError, match="'start'"):
        ChildSpec.from_mapping({"id": "w"})
    with pytest.raises(ValueError, match="-10"):
        ChildSpec.from_mapping({"id": "w", "start": start_idle, "shutdown": -10})
    with pytest.raises(ValueError, match="'permanant'"):
        ChildSpec.from_mapping({"id": "w", "start": start_idle, "restart": "permanant"})
    # Unknown keys are ignored, as OTP ignores them.
    spec = ChildSpec.from_mapping({"id": "w", "start": start_idle, "modules": ["m"], "x": 1})
    assert spec.id == "w"


def test_S20_significant_children_are_refused() -> None:
    with pytest.raises(ValueError, match="significant"):
        ChildSpec.from_mapping({"id": "w", "start": start_idle, "significant": True})
    assert ChildSpec.from_mapping({"id": "w", "start": start_idle, "significant": False})


def test_coerce_accepts_genserver_specs() -> None:
    mapping = Server.child_spec(7, id="srv", restart="transient")
    spec = ChildSpec.coerce(mapping)
    assert (spec.id, spec.args, spec.restart, spec.type) == ("srv", (7,), "transient", "worker")
    assert ChildSpec.coerce(Server).id is Server
    assert ChildSpec.coerce((Server, 3)).args == (3,)
    assert ChildSpec.coerce(spec) is spec
    with pytest.raises(TypeError, match="child_spec"):
        ChildSpec.coerce("Server")


def test_worker_specs() -> None:
    spec = worker(idle, 1, 2, id="idle", name="idle", restart="transient", shutdown="brutal_kill")
    assert spec == ChildSpec("idle", SpawnLink(idle, "idle"), (1, 2), "transient", "brutal_kill")
    assert worker(idle).id is idle
    assert worker(idle) == worker(idle)
    with pytest.raises(TypeError):
        worker("idle")  # type: ignore[arg-type]


def test_child_specs_duplicate_ids_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate child id 'a'"):
        SupervisorSpec([worker(idle, id="a"), worker(idle, id="b"), worker(idle, id="a")])


@pytest.mark.parametrize(
    ("flags", "error", "shown"),
    [
        ({"strategy": "simple_one_for_one"}, ValueError, "'simple_one_for_one'"),
        ({"strategy": None}, ValueError, "None"),
        ({"max_restarts": "infinity"}, TypeError, "'infinity'"),
        ({"max_restarts": -1}, ValueError, "-1"),
        ({"max_seconds": 0}, ValueError, "0"),
        ({"max_seconds": "infinity"}, TypeError, "'infinity'"),
        ({"max_seconds": math.inf}, ValueError, "inf"),
    ],
)
async def test_sup_flags_are_rejected_at_start(
    node: Node, flags: dict[str, Any], error: type, shown: str
) -> None:
    with pytest.raises(error, match=shown):
        SupervisorSpec([], **flags)

    async def body() -> None:
        with pytest.raises(error, match=shown):
            await Supervisor.start_link([], **flags)

    await node.run(body)


async def test_bad_children_fail_before_anything_starts(node: Node) -> None:
    async def body() -> None:
        trap_exits(True)
        with pytest.raises(ValueError, match="duplicate"):
            await Supervisor.start_link([worker(idle, id="a"), worker(idle, id="a")])
        with pytest.raises(TypeError, match="list of child specs"):
            await Supervisor.start_link("children")
        with pytest.raises(TypeError):
            await Supervisor.start_link([42])
        with pytest.raises(StartError):
            await Supervisor.start_link([], name="taken")
            await Supervisor.start_link([], name="taken")

    await node.run(body)
