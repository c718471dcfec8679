"""Shared test configuration and fixtures for every test folder.

Fixtures:

- ``redis_server``: a real ``redis-server`` on a free port, persistence off,
  in a temporary directory (``tests/redis_server.py``, ``RedisServer``). It
  has ``url``, ``host``, ``port``, ``kill()`` (SIGKILL), ``restart()`` /
  ``await restart_async()`` (the same port, empty) and ``start()``. A missing
  ``redis-server`` fails the test with a message saying how to install it;
  it is never skipped.

This folder is put on ``sys.path``, so that every test can import its helper
modules: ``redis_server`` (the server above), ``os_nodes`` (nodes in OS
processes of their own, always reaped), ``export_checks`` (a package's public
names, docstrings and homes), ``docs_checks`` (a guide shows its example
files as they are; running an example), ``hostile`` (throwing terms at a
process in the bad-input tests), ``line_reader`` (a subprocess's output, line
by line) and ``handshake`` (two protocol connections joined in memory).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from redis_server import RedisServer, RedisServerError  # noqa: E402

settings.register_profile(
    "beamlet",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("beamlet")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A running ``redis-server`` of this test's own (see ``tests/redis_server.py``)."""
    server = None
    try:
        server = RedisServer()
        server.start()
    except RedisServerError as error:
        if server is not None:
            server.stop()
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        server.stop()
