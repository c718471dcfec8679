"""Distribution for real: separate OS processes over loopback TCP, and TLS.

The cluster test starts three nodes as subprocesses (``node_main.py``), drives
them over stdin and reads what they see on stdout, then kills one with
SIGKILL. The TLS tests run nodes in this process, over real TCP and TLS with
certificates made by ``trustme``. Every wait is bounded and waits for an
event, never for a fixed time.
"""

from __future__ import annotations

import logging
import signal
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
from beamlet.actors import Pid, call, cast, receive, self_pid, send, send_exit, spawn
from beamlet.cluster import (
    ConnectError,
    RpcError,
    TLSConfig,
    connect,
    export,
    listen_address,
    nodes,
    open_node,
    pg,
    rpc,
)
from beamlet.supervisors import ChildCounts, Supervisor, SupervisorError, worker
from os_nodes import OSNode, os_nodes

NODE_MAIN = Path(__file__).with_name("node_main.py")
COOKIE = "real-cluster-cookie-0123456789abcdef"


@asynccontextmanager
async def node_processes(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[OSNode]]]:
    """Start ``node_main.py`` nodes (``start(name, *seeds, env=None)``); all stopped on exit."""
    async with os_nodes(tmp_path) as nodes:

        async def start(name: str, *seeds: str, env: dict[str, str] | None = None) -> OSNode:
            return await nodes.start_node(NODE_MAIN, name, COOKIE, *seeds, env=env)

        yield start


@pytest.mark.timeout(90)
async def test_three_os_processes_mesh_talk_and_survive_a_sigkill(tmp_path: Path) -> None:
    names = ["n1@127.0.0.1", "n2@127.0.0.1", "n3@127.0.0.1"]
    async with node_processes(tmp_path) as start:
        n1 = await start(names[0])
        # n2 and n3 know only n1; they find each other through gossip
        n2, n3 = await start(names[1], n1.address), await start(names[2], n1.address)
        cluster = [n1, n2, n3]

        # full mesh: every node reports the two others up
        for node in cluster:
            for other in cluster:
                if other is not node and other.name not in node.ready["nodes"]:
                    await node.expect(lambda e, o=other: e == {"event": "nodeup", "node": o.name})
        for node in cluster:
            await node.command(cmd="nodes")
            reply = await node.expect(lambda e: e["event"] == "nodes")
            assert sorted(reply["nodes"]) == sorted(n.name for n in cluster if n is not node)

        # cross-node send by name, both ways round the mesh
        await n1.command(cmd="send", name="sink", node=n3.name, msg=["hello", 1])
        await n3.expect(lambda e: e == {"event": "received", "msg": ["hello", 1]})
        await n3.command(cmd="send", name="sink", node=n2.name, msg="from n3")
        await n2.expect(lambda e: e == {"event": "received", "msg": "from n3"})

        # n1 and n2 link to and monitor a process of n3, and watch a group n3 joins
        for node in (n1, n2):
            await node.command(cmd="watch", name="holder", node=n3.name)
            await node.expect(lambda e: e == {"event": "watching", "node": n3.name})
            await node.command(cmd="watch_group", group="workers")
            await node.expect(lambda e: e["event"] == "pg" and e["kind"] == "current")
        await n3.command(cmd="join", group="workers")
        for node in (n1, n2):
            await node.expect(
                lambda e: e["event"] == "pg" and e["kind"] == "join" and e["nodes"] == [n3.name]
            )

        # SIGKILL n3: the survivors see it go, with noconnection, and its members leave
        n3.kill()
        for node in (n1, n2):
            down = await node.expect(lambda e: e["event"] == "nodedown")
            assert down["node"] == n3.name
            assert (await node.expect(lambda e: e["event"] == "exit"))["reason"] == "noconnection"
            assert (await node.expect(lambda e: e["event"] == "down"))["reason"] == "noconnection"
            leave = await node.expect(lambda e: e["event"] == "pg" and e["kind"] == "leave")
            assert leave["nodes"] == [n3.name]
            await node.command(cmd="nodes")
            reply = await node.expect(lambda e: e["event"] == "nodes")
            assert sorted(reply["nodes"]) == sorted(n.name for n in (n1, n2) if n is not node)

        # the survivors still talk
        await n2.command(cmd="send", name="sink", node=n1.name, msg="still here")
        await n1.expect(lambda e: e == {"event": "received", "msg": "still here"})
        for node in (n1, n2):
            await node.command(cmd="quit")
        for node in (n1, n2):
            assert await node.exited() == 0


#: The sigstop test: n1's ticktime, how long n1 stays stopped each time, and n2's
#: ticktime (n2 ticks every quarter of it). The margins (1.5 s: the stop is well
#: short of n1's ticktime, and n2 ticks well within each stop) are far beyond
#: what scheduling delays on a loaded machine add.
STOP_TICKTIME, STOP_FOR, STOP_PEER_TICKTIME = 6.0, 4.5, 12.0


@pytest.mark.timeout(120)
async def test_sigstop_shorter_than_the_ticktime_takes_no_node_down(tmp_path: Path) -> None:
    """n1 (ticktime 6) is stopped for 4.5 s, four times; n2 (ticktime 12) ticks
    to it meanwhile (every 3 s), and heard from it less than 12 s ago. When n1
    resumes, its last read from n2 is often more than 6 s old, and its ticker
    and its reader wake up together: neither node may declare the other down.
    After each stop, n1 answers (it ran again) before it is stopped again."""
    async with node_processes(tmp_path) as start:
        n2 = await start("n2@127.0.0.1", env={"BEAMLET_TEST_TICKTIME": str(STOP_PEER_TICKTIME)})
        n1 = await start(
            "n1@127.0.0.1", n2.address, env={"BEAMLET_TEST_TICKTIME": str(STOP_TICKTIME)}
        )
        if n2.name not in n1.ready["nodes"]:
            await n1.expect(lambda e: e == {"event": "nodeup", "node": n2.name})
        for node in (n1, n2):
            await node.command(cmd="nodes")
            assert len((await node.expect(lambda e: e["event"] == "nodes"))["nodes"]) == 1
        for _ in range(4):
            stopped = trio.current_time()
            n1.process.send_signal(signal.SIGSTOP)
            await trio.sleep_until(stopped + STOP_FOR)
            n1.process.send_signal(signal.SIGCONT)
            # The stop really was shorter than n1's ticktime (this process
            # may itself have been descheduled past its wake-up).
            assert trio.current_time() - stopped < STOP_TICKTIME
            # n1 runs again, and still knows n2, before the next stop.
            await n1.command(cmd="nodes")
            assert (await n1.expect(lambda e: e["event"] == "nodes"))["nodes"] == [n2.name]
        await n1.command(cmd="send", name="sink", node=n2.name, msg="after the pauses")
        await n2.expect(lambda e: e == {"event": "received", "msg": "after the pauses"})
        for node in (n1, n2):
            assert not [e for e in node.lines if e["event"] == "nodedown"], node.lines
        assert "declaring it down" not in n1.stderr.read_text()


@pytest.mark.timeout(90)
async def test_out_of_file_descriptors_a_node_still_lets_real_nodes_in(tmp_path: Path) -> None:
    """n1 may open 48 file descriptors; 150 sockets that never authenticate
    exhaust them. Nodes that do authenticate still get in (the oldest idle
    socket is dropped to make room), and the log holds a line, not hundreds."""
    async with node_processes(tmp_path) as start:
        n1 = await start("n1@127.0.0.1", env={"BEAMLET_TEST_NOFILE": "48"})
        host, _, port = n1.address.rpartition(":")
        hostile = []
        try:
            for _ in range(150):
                hostile.append(await trio.open_tcp_stream(host, int(port)))
            for i in range(3):
                async with open_node(f"c{i}@127.0.0.1", cookie=COOKIE) as client:
                    with trio.fail_after(10):
                        assert await client.run(connect, n1.address)
                await n1.expect(lambda e, i=i: e == {"event": "nodeup", "node": f"c{i}@127.0.0.1"})
        finally:
            for stream in hostile:
                await stream.aclose()
        log = n1.stderr.read_text()
        crowded = [line for line in log.splitlines() if "open files" in line]
        assert 1 <= len(crowded) <= 3, crowded[:10]


@pytest.mark.timeout(60)
async def test_system_services_of_an_os_process_node_come_back_after_a_kill(
    tmp_path: Path,
) -> None:
    async with node_processes(tmp_path) as start:
        other = await start("k1@127.0.0.1")
        target = other.name

        async def until_new(name: str, old: Pid) -> Pid:
            while True:
                pid = await call(("ctl", target), ("whereis", name))
                if pid is not None and pid != old:
                    return pid  # type: ignore[no-any-return]
                await trio.sleep(0.02)

        async def until_members(expected: list[Pid]) -> None:
            while True:
                if await call(("ctl", target), ("members", "g")) == expected:
                    return
                await trio.sleep(0.02)

        async def member() -> None:
            await pg.join("g")
            await trio.sleep_forever()

        async def body() -> None:
            assert await connect(other.address)
            # Bad input is answered, not fatal: the same processes serve on.
            before = [
                await call(("ctl", target), ("whereis", name))
                for name in ("beamlet_rpc", "beamlet_pg_default", "beamlet_kernel_sup")
            ]
            ghost = Pid(target, 10**9, before[0].creation)  # of that node, never alive
            answer = await call(("beamlet_rpc", target), 10**5000)
            assert answer == ("error", ("bad_request", "<unrepresentable int>"))
            request = ("spawn", "node_main.sleeper", (), ghost)
            answer = await call(("beamlet_rpc", target), request)
            assert answer == ("error", ("noproc", ghost))  # and nothing was started
            answer = await call(("beamlet_pg_default", target), 5)
            assert answer == ("error", ("bad_request", "5"))
            cast(("beamlet_kernel_sup", target), "junk")
            after = [
                await call(("ctl", target), ("whereis", name))
                for name in ("beamlet_rpc", "beamlet_pg_default", "beamlet_kernel_sup")
            ]
            assert after == before
            # rpc: killed by a remote exit signal, restarted, serving again
            old = await call(("ctl", target), ("whereis", "beamlet_rpc"))
            send_exit(old, "kill")
            await until_new("beamlet_rpc", old)
            with pytest.raises(RpcError) as info:
                await rpc(target, "not.exported")
            assert info.value.reason == ("not_exported", "not.exported")

            # pg: the restarted scope learns this node's member again
            mine = spawn(member)
            await until_members([mine])
            old = await call(("ctl", target), ("whereis", "beamlet_pg_default"))
            send_exit(old, "kill")
            await until_new("beamlet_pg_default", old)
            await until_members([mine])

        with trio.fail_after(30):
            async with open_node("t@127.0.0.1", cookie=COOKIE) as node:
                await node.run(body)
        await other.command(cmd="quit")
        assert await other.exited() == 0


@pytest.mark.timeout(60)
async def test_a_wrong_cookie_against_an_os_process_node_says_why_on_both_sides(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)  # the default level
    async with node_processes(tmp_path) as start:
        other = await start("c1@127.0.0.1")

        async def body() -> ConnectError:
            assert await connect(other.address) is False
            with pytest.raises(ConnectError) as info:
                await connect(other.address, raise_on_error=True)
            return info.value

        with trio.fail_after(30):
            async with open_node(
                "intruder@127.0.0.1", cookie="not-the-cluster-cookie-0123456789"
            ) as node:
                error = await node.run(body)
        assert error.reason == (
            "refused by the peer: bad cookie (the two nodes have different cookies)"
        )
        assert (error.node, error.address) == ("c1@127.0.0.1", other.address)
        [line] = [m for m in _refused(caplog) if "could not connect" in m]  # once, not twice
        assert line == str(error)
        await other.command(cmd="quit")
        assert await other.exited() == 0
        log = other.stderr.read_text()
        assert "WARNING refused an incoming connection from 127.0.0.1 (intruder@127.0.0.1)" in (
            log.replace("beamlet.cluster ", "")
        )
        assert "proof does not match (a different cookie?)" in log


@export(name="node_main.sleeper")  # the same export as node_main.py's, so it crosses by name
async def sleeper() -> None:
    await trio.sleep_forever()


@pytest.mark.timeout(60)
async def test_a_supervisor_of_an_os_process_node_is_managed_from_here(tmp_path: Path) -> None:
    async with node_processes(tmp_path) as start:
        other = await start("s1@127.0.0.1")
        sup = ("app_sup", other.name)

        async def body() -> None:
            assert await connect(other.address)
            [holder] = await Supervisor.which_children(sup)
            assert (holder.id, holder.type) == ("holder", "worker")
            assert holder.pid == await call(("ctl", other.name), ("whereis", "holder"))
            assert await Supervisor.count_children(sup) == ChildCounts(1, 1, 0, 1)
            pid = await Supervisor.start_child(sup, worker(sleeper, id="s", name="s"))
            assert isinstance(pid, Pid) and pid.node == other.name
            assert await call(("ctl", other.name), ("whereis", "s")) == pid
            assert [c.id for c in await Supervisor.which_children(sup)] == ["holder", "s"]
            await Supervisor.terminate_child(sup, "s")
            assert await call(("ctl", other.name), ("whereis", "s")) is None
            await Supervisor.delete_child(sup, "s")
            with pytest.raises(SupervisorError) as info:
                await Supervisor.terminate_child(sup, "s")
            assert info.value.reason == "not_found"
            assert await Supervisor.count_children(sup) == ChildCounts(1, 1, 0, 1)

        with trio.fail_after(30):
            async with open_node("sup_client@127.0.0.1", cookie=COOKIE) as node:
                await node.run(body)
        await other.command(cmd="quit")
        assert await other.exited() == 0


# -- TLS -------------------------------------------------------------------------------------


def _write(tmp_path: Path, ca: trustme.CA, host: str, stem: str) -> tuple[str, str]:
    cert = ca.issue_cert(host)
    certfile = tmp_path / f"{stem}.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    return str(certfile), str(certfile)


@pytest.fixture
def tls_files(tmp_path: Path) -> dict[str, Any]:
    ca = trustme.CA()
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    other_ca = trustme.CA()
    files: dict[str, Any] = {"cafile": str(cafile)}
    for stem in ("n1", "n2", "n3"):
        files[stem] = _write(tmp_path, ca, "127.0.0.1", stem)
    files["wrong_host"] = _write(tmp_path, ca, "example.org", "wrong")
    files["other_ca"] = _write(tmp_path, other_ca, "127.0.0.1", "other")
    return files


def _tls(files: dict[str, Any], stem: str, **options: Any) -> TLSConfig:
    certfile, keyfile = files[stem]
    return TLSConfig.from_files(
        certfile=certfile, keyfile=keyfile, cafile=files["cafile"], **options
    )


async def _echo() -> None:
    while True:
        sender, msg = await receive()
        send(sender, ("echo", msg))


async def _ask(dest: Any, msg: Any) -> Any:
    send(dest, (self_pid(), msg))
    return await receive(timeout=5)


async def test_tls_nodes_with_good_certificates_connect_and_talk(tls_files: dict[str, Any]) -> None:
    async with open_node("n1@127.0.0.1", cookie=COOKIE, tls=_tls(tls_files, "n1")) as n1:
        address = await n1.run(_listen_address)
        async with open_node("n2@127.0.0.1", cookie=COOKIE, tls=_tls(tls_files, "n2")) as n2:
            n1.spawn(_echo, name="echo")
            assert await n2.run(connect, address)
            assert await n2.run(_ask, ("echo", "n1@127.0.0.1"), "over tls") == ("echo", "over tls")
            peer = n2.router.peers["n1@127.0.0.1"]  # type: ignore[attr-defined]
            assert isinstance(peer.stream, trio.SSLStream)
            assert peer.stream.version() in ("TLSv1.2", "TLSv1.3")


async def _listen_address() -> str | None:
    return listen_address()


async def _nodes() -> list[str]:
    return nodes()


def _refused(caplog: pytest.LogCaptureFixture, level: int = logging.DEBUG) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "beamlet.cluster" and r.levelno >= level
    ]


async def _connect_error(target: str) -> ConnectError:
    with pytest.raises(ConnectError) as info:
        await connect(target, raise_on_error=True)
    return info.value


async def test_tls_a_node_without_a_client_certificate_is_refused(
    tls_files: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="beamlet.cluster")
    good = _tls(tls_files, "n1")
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls_files["cafile"])
    no_cert = TLSConfig(server=_tls(tls_files, "n2").server, client=client)
    async with open_node("n1@127.0.0.1", cookie=COOKIE, tls=good) as n1:
        address = await n1.run(_listen_address)
        async with open_node("n2@127.0.0.1", cookie=COOKIE, tls=no_cert) as n2:
            assert not await n2.run(connect, address)
            error = await n2.run(_connect_error, address)
            assert await n1.run(_nodes) == [] and await n2.run(_nodes) == []
    # The client learns only that the server hung up during the TLS handshake;
    # the server says why, at WARNING.
    assert error.reason.startswith("TLS: the peer closed the connection during the TLS handshake")
    assert error.address == address
    warnings = [m for m in _refused(caplog, logging.WARNING) if "incoming connection" in m]
    assert len(warnings) == 1
    assert "TLS: peer did not return a certificate" in warnings[0]
    assert "this node requires one: mutual TLS" in warnings[0]


@pytest.mark.parametrize(
    ("stem", "dialled", "dialling"),
    [
        (
            "wrong_host",
            "TLS: certificate verify failed: IP address mismatch, certificate is not valid "
            "for '127.0.0.1'",
            "refused by the peer: n2@127.0.0.1: its certificate is not for 127.0.0.1 "
            "(DNS:example.org)",
        ),
        (
            "other_ca",
            "TLS: certificate verify failed: unable to get local issuer certificate",
            "TLS: the peer closed the connection during the TLS handshake",
        ),
    ],
)
async def test_tls_a_certificate_for_another_host_or_ca_is_refused_both_ways(
    tls_files: dict[str, Any],
    stem: str,
    dialled: str,
    dialling: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    good = _tls(tls_files, "n1")
    bad = _tls(tls_files, stem)
    async with open_node("n1@127.0.0.1", cookie=COOKIE, tls=good) as n1:
        good_address = await n1.run(_listen_address)
        async with open_node("n2@127.0.0.1", cookie=COOKIE, tls=bad) as n2:
            bad_address = await n2.run(_listen_address)
            # the bad node dials the good one: its certificate is refused
            assert not await n2.run(connect, good_address)
            from_bad = await n2.run(_connect_error, good_address)
            # the good node dials the bad one: the bad certificate is refused
            assert not await n1.run(connect, bad_address)
            from_good = await n1.run(_connect_error, bad_address)
            assert await n1.run(_nodes) == [] and await n2.run(_nodes) == []
    # The real cause, never an empty reason, for the caller and in the log.
    assert from_good.reason.startswith(dialled), from_good.reason
    assert from_bad.reason.startswith(dialling), from_bad.reason
    for error in (from_good, from_bad):
        assert error.address in (good_address, bad_address)
        assert str(error) in _refused(caplog, logging.WARNING)
