"""Starting a distributed node: errors come out as themselves and say what is wrong.

A taken port raises ``OSError`` (``except OSError`` catches it) naming the
address; a misspelt option raises ``TypeError`` naming it; an exception in the
``async with open_node()`` block comes out as itself. A node started without
a name gets a unique one. Real TCP on loopback.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
import trio
import trio.testing
from beamlet.actors import open_node as open_local_node, receive
from beamlet.actors.lowlevel import NodeVar
from beamlet.cluster import (
    InsecureListenError,
    default_node_name,
    listen_address,
    node_name,
    open_node,
    run,
    start_distribution,
)

COOKIE = "boundary-errors-cookie-0123456789abcdef"
DEFAULT_NAME = re.compile(r"^beamlet-\d+-[0-9a-f]{6}@127\.0\.0\.1$")


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port that another socket listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


async def _nothing() -> None:
    pass


def test_run_on_a_taken_port_raises_oserror_naming_the_port(taken_port: int) -> None:
    try:
        run(_nothing, name="taken@127.0.0.1", cookie=COOKIE, port=taken_port)
    except OSError as exc:  # what a user writes: no ExceptionGroup in between
        caught = exc
    else:
        raise AssertionError("run() did not fail on a taken port")
    assert caught.errno == errno.EADDRINUSE
    assert f"127.0.0.1:{taken_port}" in str(caught)
    assert "cannot listen" in str(caught)


async def test_open_node_on_a_taken_port_raises_oserror_naming_the_port(taken_port: int) -> None:
    with pytest.raises(OSError, match=f"cannot listen on 127\\.0\\.0\\.1:{taken_port}") as info:
        async with open_node("taken@127.0.0.1", cookie=COOKIE, port=taken_port):
            raise AssertionError("the node opened on a taken port")
    assert type(info.value) is OSError
    assert info.value.errno == errno.EADDRINUSE


async def test_start_distribution_on_a_taken_port_leaves_the_node_local(taken_port: int) -> None:
    async with open_local_node() as node:
        with pytest.raises(OSError, match=str(taken_port)):
            await start_distribution("retry@127.0.0.1", cookie=COOKIE, port=taken_port)

        async def where() -> tuple[str, str | None]:
            return node_name(), listen_address()

        assert await node.run(where) == ("nonode@nohost", None)
        # The same node can then be distributed on another port.
        await start_distribution("retry@127.0.0.1", cookie=COOKIE, port=0)
        name, address = await node.run(where)
        assert name == "retry@127.0.0.1"
        assert address is not None and address.startswith("127.0.0.1:")


OWNED: NodeVar[int] = NodeVar("tests.owned")


async def test_nodevar_owner_has_the_distributed_name_after_start_distribution() -> None:
    async with open_local_node() as node:

        async def own() -> None:
            OWNED.set(1)
            await receive()

        pid = node.spawn(own)
        await trio.testing.wait_all_tasks_blocked()
        assert OWNED.owner(node=node) == pid
        await start_distribution("owned@127.0.0.1", cookie=COOKIE, port=0)
        owner = OWNED.owner(node=node)
        assert owner is not None and owner.node == "owned@127.0.0.1"
        assert node.lookup(owner) is not None and owner.id == pid.id


def test_run_refuses_a_public_host_without_tls_as_a_valueerror() -> None:
    with pytest.raises(ValueError, match=r"refusing to listen on 0\.0\.0\.0 without TLS") as info:
        run(_nothing, name="pub@0.0.0.0", cookie=COOKIE)
    assert type(info.value) is InsecureListenError  # a ValueError, not in a group
    assert info.value.host == "0.0.0.0"


def test_run_names_a_misspelt_option() -> None:
    with pytest.raises(TypeError, match="'prot'"):
        run(_nothing, name="typo@127.0.0.1", cookie=COOKIE, prot=4370)  # type: ignore[call-arg]


def test_open_node_names_a_misspelt_option() -> None:
    with pytest.raises(TypeError, match="'cokie'"):
        open_node("typo@127.0.0.1", cokie=COOKIE)  # type: ignore[call-arg]


def test_run_rejects_a_bad_option_value_as_itself() -> None:
    with pytest.raises(ValueError, match="auto_connect") as info:
        run(_nothing, name="bad@127.0.0.1", cookie=COOKIE, auto_connect="sometimes")  # type: ignore[arg-type]
    assert type(info.value) is ValueError


async def test_an_error_raised_in_the_open_node_block_comes_out_as_itself() -> None:
    with pytest.raises(KeyError) as info:
        async with open_node("body@127.0.0.1", cookie=COOKIE):
            raise KeyError("user code")
    assert type(info.value) is KeyError


def test_run_raises_mains_error_as_itself() -> None:
    async def main() -> None:
        raise PermissionError("from main")

    with pytest.raises(PermissionError, match="from main") as info:
        run(main, name="main@127.0.0.1", cookie=COOKIE)
    assert type(info.value) is PermissionError


def test_run_without_a_name_gets_a_unique_default_name() -> None:
    async def main() -> tuple[str, str | None]:
        return node_name(), listen_address()

    first, address = run(main, cookie=COOKIE)
    second, _ = run(main, cookie=COOKIE)
    assert DEFAULT_NAME.match(first), first
    assert DEFAULT_NAME.match(second), second
    assert first != second
    assert f"-{os.getpid()}-" in first
    assert address is not None and address.startswith("127.0.0.1:")


async def test_open_node_without_a_name_gets_a_unique_default_name() -> None:
    async def name() -> str:
        return node_name()

    async with open_node(cookie=COOKIE) as one, open_node(cookie=COOKIE) as two:
        first, second = await one.run(name), await two.run(name)
    assert DEFAULT_NAME.match(first) and DEFAULT_NAME.match(second)
    assert first != second


UNNAMED_NODE = """
import sys
import trio
from beamlet.cluster import connect, listen_address, node_name, nodes, run

async def main():
    print(node_name(), listen_address(), flush=True)
    if len(sys.argv) > 1:
        await connect(sys.argv[1], raise_on_error=True)
        print(" ".join(nodes()), flush=True)
    else:
        await trio.to_thread.run_sync(sys.stdin.read)  # until the test closes stdin

run(main)
"""


@pytest.mark.timeout(60)
def test_two_unnamed_nodes_on_one_machine_get_different_names_and_connect() -> None:
    env = {**os.environ, "BEAMLET_COOKIE": COOKIE}
    first = subprocess.Popen(
        [sys.executable, "-c", UNNAMED_NODE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert first.stdout is not None
        first_name, first_address = first.stdout.readline().split()
        second = subprocess.run(
            [sys.executable, "-c", UNNAMED_NODE, first_address],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        assert second.returncode == 0, second.stderr
        (second_name, _address), peers = (line.split() for line in second.stdout.splitlines())
        first.communicate("", timeout=30)
    finally:
        first.kill()
    assert DEFAULT_NAME.match(first_name) and DEFAULT_NAME.match(second_name)
    assert first_name != second_name
    assert f"-{first.pid}-" in first_name
    assert peers == [first_name]  # the second reached the first, by its default name
    assert first.returncode == 0


def test_default_node_name_is_unique_and_valid() -> None:
    names = {default_node_name() for _ in range(50)}
    assert len(names) == 50
    assert all(DEFAULT_NAME.match(name) for name in names)


async def test_a_single_startup_error_is_not_a_group_even_under_trio_nurseries(
    taken_port: int,
) -> None:
    async def start() -> None:
        async with open_node("nested@127.0.0.1", cookie=COOKIE, port=taken_port):
            pass

    # A user's own nursery wraps it once, as any Trio error; nothing more.
    with pytest.raises(ExceptionGroup) as info:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(start)
    assert len(info.value.exceptions) == 1
    assert type(info.value.exceptions[0]) is OSError
