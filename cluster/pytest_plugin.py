"""A pytest plugin with fixtures for testing distributed beamlet apps in the simulation.

Installed with beamlet (entry point ``pytest11``); it needs pytest-trio. Use
it with the ``autojump_clock`` fixture so that ticks and timeouts run in
virtual time::

    async def test_my_app(beamlet_cluster, autojump_clock):
        sim = beamlet_cluster
        await sim.run("a", my_app_main)
        sim.partition({"a"}, {"b", "c"})
        ...

Fixtures:

- ``beamlet_cluster``: a running three-node cluster ``a``, ``b``, ``c``, fully
  connected. Mark a test with ``@pytest.mark.beamlet_nodes("x", "y")`` to
  choose other names, and ``@pytest.mark.beamlet_options(ticktime=2.0)`` to pass
  options to ``simulated_cluster``.
- ``beamlet_simulation``: the ``simulated_cluster`` function itself, to open
  clusters inside the test.

The tests must be Trio tests (``trio_mode = true``, or ``@pytest.mark.trio``).
The simulation's ``ticktime`` is 4 s by default. See docs/testing.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from .simulation import SimulatedCluster, simulated_cluster

__all__ = ["beamlet_cluster", "beamlet_simulation"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "beamlet_nodes(*names): node names for beamlet_cluster")
    config.addinivalue_line("markers", "beamlet_options(**options): options for beamlet_cluster")


@pytest.fixture
async def beamlet_cluster(request: pytest.FixtureRequest) -> AsyncIterator[SimulatedCluster]:
    """A running simulated cluster (default nodes ``a``, ``b``, ``c``)."""
    nodes_marker = request.node.get_closest_marker("beamlet_nodes")
    options_marker = request.node.get_closest_marker("beamlet_options")
    names = list(nodes_marker.args) if nodes_marker else ["a", "b", "c"]
    options = dict(options_marker.kwargs) if options_marker else {}
    async with simulated_cluster(names, **options) as sim:
        yield sim


@pytest.fixture
def beamlet_simulation() -> Callable[..., Any]:
    """``simulated_cluster``, to open clusters inside a test."""
    return simulated_cluster
