"""``beamlet demo``: the whole system on a real local cluster, one node killed midway."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from typing import Any

from beamlet.actors import Pid
from beamlet.apps.cli._demo import count_losses

from .conftest import COMMAND, beamlet

A, B, C = "demo1@127.0.0.1", "demo2@127.0.0.1", "demo3@127.0.0.1"


def test_a_small_demo_heals_and_loses_nothing_outside_the_killed_window() -> None:
    result = beamlet(
        "demo", "--nodes", "3", "--users", "9", "--duration", "6", "--json", timeout=55
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    summary: dict[str, Any] = json.loads(result.stdout)  # JSON only on stdout
    assert summary["ok"] is True
    assert summary["converged"] is True
    assert summary["supervisors_gave_up"] == []
    assert summary["nodes"] == 3 and summary["users"] == 9
    # Chat happened, and everything posted outside the killed node's window arrived.
    assert summary["messages_posted"] > 20
    assert summary["messages_delivered"] > summary["messages_posted"]
    assert summary["messages_lost"] == 0
    assert summary["messages_in_killed_window"] >= 0
    # The kill and the restart, and the presences converging after each.
    assert summary["killed_node"] == C
    assert summary["node_restarts"] == 1
    assert summary["exit_statuses"] == {A: [0], B: [0], C: [None, 0]}
    assert 0 < summary["presence_convergence_after_kill_s"] < 6
    assert 0 < summary["presence_convergence_after_restart_s"] < 6
    # The cache, the pool and the supervisors were used.
    assert summary["cache_reads"] > 0
    assert 0 <= summary["cache_hit_rate"] <= 1
    assert summary["emails_sent"] > 0
    if summary["profile_updates"]:  # each update is dropped by the other nodes' caches
        assert summary["cache_invalidations"] > 0
    assert summary["supervisor_restarts"] == summary["user_crashes"]
    assert summary["elapsed_s"] < 50


def test_without_a_terminal_the_demo_prints_plain_lines() -> None:
    result = beamlet("demo", "--users", "6", "--duration", "6", "--crash-rate", "0", timeout=55)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "\x1b" not in result.stdout
    assert "SIGKILL demo3@127.0.0.1" in result.stdout
    assert "presences converged" in result.stdout
    assert "messages lost (outside the killed window)" in result.stdout
    assert result.stdout.rstrip().endswith("OK: the cluster healed")


def _free_port_run(count: int) -> int:
    """A port P such that P .. P + count - 1 are free now."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            base = first.getsockname()[1]
        if base + count > 65536:
            continue
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + count):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise AssertionError(f"no {count} consecutive free ports")


def _squat(port: int, demo: subprocess.Popen[str], timeout: float = 40) -> socket.socket:
    """Wait until a node listens on ``port``, then take the port as soon as it is gone."""
    deadline = time.monotonic() + timeout
    while True:  # the node is up once it accepts a connection
        assert demo.poll() is None and time.monotonic() < deadline, "the node never came up"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    while True:  # taken from the moment the node is killed: its restart finds it in use
        assert demo.poll() is None and time.monotonic() < deadline, "the node was never killed"
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            return squatter
        except OSError:
            squatter.close()
            time.sleep(0.02)


def test_a_node_that_cannot_restart_fails_the_demo_and_the_summary_says_why() -> None:
    """Another program takes the killed node's port: the demo goes on, then exits 1."""
    base = _free_port_run(3)
    demo = subprocess.Popen(
        [
            *COMMAND,
            "demo",
            "--nodes",
            "3",
            "--users",
            "6",
            "--duration",
            "6",
            "--crash-rate",
            "0",
            "--base-port",
            str(base),
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    squatter = None
    try:
        squatter = _squat(base + 2, demo)  # demo3's port
        stdout, stderr = demo.communicate(timeout=50)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
        if squatter is not None:
            squatter.close()
    assert demo.returncode == 1, (stdout, stderr)
    assert "Traceback" not in stderr and stderr == ""
    summary: dict[str, Any] = json.loads(stdout)
    assert summary["ok"] is False
    assert summary["converged"] is False
    assert summary["supervisors_gave_up"] == []
    [problem] = summary["problems"]
    assert problem.startswith(f"{C} could not be restarted: node {C} exited with status 1 while ")
    assert f"cannot listen on 127.0.0.1:{base + 2}: Address already in use" in problem
    assert summary["exit_statuses"] == {A: [0], B: [0], C: [None, 1]}
    # The two other nodes healed: the killed node's users are gone from their views.
    assert summary["presence_convergence_after_kill_s"] is not None
    assert summary["presence_convergence_after_restart_s"] is None
    assert summary["messages_lost"] == 0


def test_bad_demo_options_are_one_line() -> None:
    result = beamlet("demo", "--nodes", "1")
    assert result.returncode == 2
    assert result.stderr == "beamlet: error: bad --nodes 1: expected 2..8\n"


def pid(node: str, n: int) -> Pid:
    return Pid(node, n, 1)


def test_losses_count_gaps_and_leave_out_the_killed_incarnation() -> None:
    p1, p2, p3 = pid(A, 1), pid(B, 2), pid(C, 3)  # p3: the restarted incarnation
    dead = Pid(C, 9, 7)  # a publisher of the killed incarnation
    finals = {
        A: {
            "published": {p1: ("r", 10)},
            "heard": [
                ("r", p1, 1, 10, 10),  # all of it
                ("r", p2, 1, 8, 7),  # one gap, and its last 2 never came: 3 lost
                ("r", p3, 4, 6, 3),  # from the 4th on (before: not subscribed yet): none lost
                ("r", dead, 1, 5, 5),  # left out
            ],
        },
        B: {
            "published": {p2: ("r", 10)},
            "heard": [("r", p2, 1, 10, 10)],  # it never heard p1 at all: 10 lost
        },
        C: {
            "published": {p3: ("r", 6)},
            "heard": [("r", p1, 5, 10, 6), ("r", p2, 3, 10, 7)],  # p2: one lost after the 3rd
        },
    }
    assert count_losses(finals, C) == (3 + 10 + 1, 5)


def test_no_losses_when_everything_arrived() -> None:
    p1, p2 = pid(A, 1), pid(B, 2)
    finals = {
        A: {"published": {p1: ("r", 3)}, "heard": [("r", p1, 1, 3, 3), ("r", p2, 1, 2, 2)]},
        B: {"published": {p2: ("r", 2)}, "heard": [("r", p1, 1, 3, 3), ("r", p2, 1, 2, 2)]},
    }
    assert count_losses(finals, C) == (0, 0)


def demo_with(views: dict[str, tuple[str, list[tuple[str, int, str]], int]]) -> Any:
    """A demo whose nodes are up with these (boot, presences, users) figures."""
    import argparse
    from pathlib import Path

    from beamlet.apps.cli._demo import Demo

    args = argparse.Namespace(
        nodes=len(views), users=len(views), rooms=1, duration=6.0, interval=0.5,
        crash_rate=0.0, json=True, base_port=None,
    )  # fmt: skip
    demo = Demo(args, Path("."), Path("cookie"))
    for node, (name, (boot, presences, users)) in zip(demo.nodes, views.items(), strict=True):
        assert node.name == name
        node.state = "up"
        node.uids = list(range(users))
        node.stats = {"boot": boot, "presences": presences, "users": users}
    return demo


def test_converged_means_the_same_presences_everywhere_none_dead_all_own() -> None:
    everyone = [("r", 0, "b1"), ("r", 1, "b2")]
    demo = demo_with({A: ("b1", everyone, 1), B: ("b2", everyone, 1)})
    assert demo.converged()
    assert demo.converged(require=demo.nodes[1])
    demo.killed_boot = "b0"
    assert demo.converged()
    # One node behind: not yet.
    demo = demo_with({A: ("b1", everyone, 1), B: ("b2", everyone[:1], 1)})
    assert not demo.converged()
    # A presence of the killed incarnation still listed everywhere: not yet.
    dead = [*everyone, ("r", 2, "b0")]
    demo = demo_with({A: ("b1", dead, 1), B: ("b2", dead, 1)})
    demo.killed_boot = "b0"
    assert not demo.converged()
    # A node's own users not all listed (one is restarting): not yet.
    demo = demo_with({A: ("b1", everyone, 2), B: ("b2", everyone, 1)})
    assert not demo.converged()
    # The restarted node must be up to count.
    demo = demo_with({A: ("b1", everyone, 1), B: ("b2", everyone, 1)})
    demo.nodes[1].state = "starting"
    assert not demo.converged(require=demo.nodes[1])
