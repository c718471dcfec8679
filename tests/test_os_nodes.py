"""The shared helper for nodes in OS processes (``tests/os_nodes.py``): lines are
read and taken, failures say what the process printed, and every process is
reaped however the test ends."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio
from os_nodes import OSNode, os_nodes, parse_text

# Prints its first argument, echoes each line of stdin (and "bye" on "quit"),
# and on "die" writes to stderr and exits 3 at once.
SCRIPT = """
import sys
print(sys.argv[1], flush=True)
for line in sys.stdin:
    line = line.strip()
    if line == "quit":
        print("bye", flush=True)
        break
    if line == "die":
        print("dying on purpose", file=sys.stderr, flush=True)
        sys.exit(3)
    print("echo " + line, flush=True)
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "echo_node.py"
    path.write_text(SCRIPT)
    return path


def _alive(pid: int) -> bool:
    # A child not yet reaped is still in the process table (as a zombie, once dead).
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_lines_are_read_expected_in_turn_and_drained_at_exit(
    tmp_path: Path, script: Path
) -> None:
    async with os_nodes(tmp_path) as nodes:
        node = await nodes.start(
            "e1@127.0.0.1", script, "ready 127.0.0.1:1", parse=parse_text, ready=str.isascii
        )
        assert node.ready == "ready 127.0.0.1:1"
        for word in ("a", "a", "b"):
            await node.write(word)
        assert await node.expect(lambda line: line == "echo a") == "echo a"
        assert await node.expect(lambda line: line == "echo a") == "echo a"  # the second one
        await node.write("quit")
        assert await node.exited() == 0
        # Everything it printed before it exited has been read.
        assert node.lines == ["ready 127.0.0.1:1", "echo a", "echo a", "echo b", "bye"]


async def test_expect_fails_at_once_when_the_output_ends_and_shows_stderr(
    tmp_path: Path, script: Path
) -> None:
    async with os_nodes(tmp_path) as nodes:
        node = await nodes.start("e2@127.0.0.1", script, '{"event": "ready"}')
        await node.expect(lambda e: e == {"event": "ready"})
        await node.write("die")
        with trio.fail_after(10), pytest.raises(AssertionError) as info:
            await node.expect(lambda e: False, timeout=60)
        message = str(info.value)
        assert message.startswith("e2@127.0.0.1: no such line (its output ended)")
        assert "{'event': 'ready'}" in message and "dying on purpose" in message
        assert await node.exited() == 3


async def test_a_line_that_is_not_json_fails_the_next_expect(tmp_path: Path, script: Path) -> None:
    async with os_nodes(tmp_path) as nodes:
        node = await nodes.start("e3@127.0.0.1", script, "not json")
        with trio.fail_after(10), pytest.raises(AssertionError) as info:
            await node.expect(lambda e: True, timeout=60)
        assert str(info.value).startswith(
            "e3@127.0.0.1: no such line (it printed a line that does not parse ("
        )
        assert "b'not json'" in str(info.value)


async def test_nodes_are_killed_and_reaped_when_the_test_fails(
    tmp_path: Path, script: Path
) -> None:
    started: list[OSNode] = []
    with pytest.RaisesGroup(pytest.RaisesExc(AssertionError, match="the test failed")):
        async with os_nodes(tmp_path) as nodes:
            for name in ("k1@127.0.0.1", "k2@127.0.0.1"):
                started.append(await nodes.start(name, script, "up", parse=parse_text))
            await started[0].expect(lambda line: line == "up")
            assert all(_alive(node.process.pid) for node in started)
            raise AssertionError("the test failed")
    for node in started:
        assert node.process.returncode == -9
        assert not _alive(node.process.pid)


async def test_nodes_are_killed_and_reaped_when_the_test_is_cancelled(
    tmp_path: Path, script: Path
) -> None:
    with trio.CancelScope() as scope:
        async with os_nodes(tmp_path) as nodes:
            node = await nodes.start("c1@127.0.0.1", script, "up", parse=parse_text)
            await node.expect(lambda line: line == "up")
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert node.process.returncode == -9
    assert not _alive(node.process.pid)


# Takes NAME COOKIE [SEED...], prints its ready line (the name RENAME, if set), then waits.
NODE_SCRIPT = """
import json, os, sys
name, cookie, *seeds = sys.argv[1:]
ready = {"event": "ready", "name": os.environ.get("RENAME", name), "cookie": cookie}
print(json.dumps({**ready, "address": "127.0.0.1:%d" % len(seeds)}), flush=True)
sys.stdin.read()
"""


async def test_a_node_script_is_started_with_its_name_cookie_and_seeds(tmp_path: Path) -> None:
    node_script = tmp_path / "node_script.py"
    node_script.write_text(NODE_SCRIPT)
    async with os_nodes(tmp_path) as nodes:
        node = await nodes.start_node(node_script, "s1@127.0.0.1", "c00kie", "a:1", "b:2")
        assert node.ready["cookie"] == "c00kie"
        assert node.address == "127.0.0.1:2"
        with pytest.raises(AssertionError, match="other@h"):
            await nodes.start_node(node_script, "s2@127.0.0.1", "c", env={"RENAME": "other@h"})
