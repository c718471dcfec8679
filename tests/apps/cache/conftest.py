"""Fixtures of the cache tests: a fresh local node."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from beamlet.actors import Node, open_node


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    """A fresh local node; tests run their bodies in it with ``await node.run(body)``."""
    async with open_node() as node:
        yield node
