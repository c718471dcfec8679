"""``beamlet demo``: a chat service on a local cluster, one node killed midway.

The orchestrator starts ``--nodes`` nodes, each a separate OS process
(``_demo_node``) on loopback, sharing a fresh random cookie kept in a 0600
file of a temporary directory. It joins them as a hidden node and reads
their figures through their ``demo_control`` servers, over the
distribution. Timeline (``--duration`` seconds of chat):

1. the nodes start and form a full mesh; the users join their rooms;
2. at 30% of the run, the last node is killed with SIGKILL; at 60% it is
   started again (a new incarnation, same name and port);
3. at the end, posting stops, the cluster settles, the orchestrator checks
   that every node sees the same presences, collects the counters and stops
   the nodes with SIGTERM (each shuts its tree down and exits 0).

Lost messages are counted by the listeners (one per room and node) as gaps
in each publisher's sequence numbers. Outside the killed node's window means:
every pair of listener and publisher on nodes that were never killed,
counted from the first message; and pairs involving the restarted
incarnation, counted from the first message the listener got (before it,
the other nodes could not yet know of its subscriptions). Messages to or
from the killed incarnation are not counted: they went down with it.

Exit status: 0 if the presences converged and no supervisor gave up (no
node exited on its own, the killed node started again, every node shut down
cleanly); 1 otherwise, with the reasons in the summary (``problems``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import outcome
import trio
from beamlet.actors import CallExitError, CallTimeoutError, call
from beamlet.cluster import Cookie, connect, open_node

from ._console import captured_logs
from ._errors import EXIT_FAILURE, EXIT_USAGE, CliError
from ._rich import load_rich
from ._table import plain_table

__all__ = ["add_parser", "command", "count_losses"]

CONTROL = "demo_control"

#: The shares of the run after which a node is killed, and started again.
KILL_AT = 0.3
RESTART_AT = 0.6


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a chat service on a local 3-node cluster, kill a node, watch it heal",
        description=(
            "Start a local cluster of nodes (separate OS processes on 127.0.0.1) running a "
            "chat service: users join rooms tracked by Presence, post through PubSub, read "
            "profiles through a cache invalidated cluster-wide and hand emails to a worker "
            "pool. One node is killed with SIGKILL midway and restarted. Ends with a summary "
            "(messages delivered and lost, presence convergence, cache hit rate, restarts); "
            "exits 1 if the cluster did not converge or a supervisor gave up."
        ),
    )
    parser.add_argument("--nodes", type=int, default=3, help="nodes in the cluster (2..8)")
    parser.add_argument("--users", type=int, default=60, help="simulated users, in all")
    parser.add_argument("--rooms", type=int, default=4, help="chat rooms")
    parser.add_argument(
        "--duration", type=float, default=20.0, metavar="S", help="seconds of chat (>= 6)"
    )
    parser.add_argument(
        "--interval", type=float, default=0.5, metavar="S", help="seconds between a user's posts"
    )
    parser.add_argument(
        "--crash-rate",
        type=float,
        default=0.01,
        metavar="P",
        help="chance that a user crashes after a post (its supervisor restarts it)",
    )
    parser.add_argument(
        "--base-port",
        type=int,
        default=None,
        metavar="PORT",
        help="the first node listens on PORT, the next on PORT+1, ... "
        "(default: free ports the system picks)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON only")
    parser.set_defaults(command=command)


def _check(args: argparse.Namespace) -> None:
    problems = [
        (not 2 <= args.nodes <= 8, f"--nodes {args.nodes}: expected 2..8"),
        (not args.nodes <= args.users <= 5000, f"--users {args.users}: expected --nodes..5000"),
        (not 1 <= args.rooms <= 100, f"--rooms {args.rooms}: expected 1..100"),
        (not 6 <= args.duration <= 3600, f"--duration {args.duration:g}: expected 6..3600"),
        (not 0.01 <= args.interval <= 60, f"--interval {args.interval:g}: expected 0.01..60"),
        (not 0 <= args.crash_rate <= 0.5, f"--crash-rate {args.crash_rate:g}: expected 0..0.5"),
    ]
    if args.base_port is not None and not 1 <= args.base_port <= 65536 - args.nodes:
        problems.append((True, f"--base-port {args.base_port}: expected 1..{65536 - args.nodes}"))
    for bad, message in problems:
        if bad:
            raise CliError(f"bad {message}", EXIT_USAGE)


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


class DemoNode:
    """One node of the demo, as the orchestrator sees it."""

    def __init__(self, index: int, port: int, workdir: Path) -> None:
        self.index = index
        self.name = f"demo{index + 1}@127.0.0.1"
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.log = workdir / f"demo{index + 1}.log"
        self.process: trio.Process | None = None
        self.state = "starting"
        self.incarnation = 0
        self.stats: dict[str, Any] | None = None
        self.rate = 0.0
        self._last: tuple[float, int] | None = None
        self.uids: list[int] = []
        #: Exit statuses of the incarnations that ended (None: killed by the demo).
        self.exits: list[int | None] = []

    def observe(self, stats: dict[str, Any], now: float) -> None:
        if self._last is not None and now > self._last[0]:
            self.rate = (stats["received"] - self._last[1]) / (now - self._last[0])
        self._last = (now, stats["received"])
        self.stats = stats

    def reset(self) -> None:
        self.stats = None
        self._last = None
        self.rate = 0.0


class Demo:
    """The orchestrator: node processes, the timeline, figures, the summary."""

    def __init__(self, args: argparse.Namespace, workdir: Path, cookie_file: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.cookie_file = cookie_file
        if args.base_port is None:
            ports = _free_ports(args.nodes)
        else:
            ports = [args.base_port + i for i in range(args.nodes)]
        self.nodes = [DemoNode(i, port, workdir) for i, port in enumerate(ports)]
        for uid in range(args.users):
            self.nodes[uid % args.nodes].uids.append(uid)
        self.victim = self.nodes[-1]
        self.db_node = self.nodes[0].name
        self.started = time.monotonic()
        self.events: list[str] = []
        self.killed_boot: str | None = None
        self.killed_stats: dict[str, Any] | None = None
        self.kill_time: float | None = None
        self.restart_time: float | None = None
        self.converged_after_kill: float | None = None
        self.converged_after_restart: float | None = None
        self.gave_up: list[str] = []
        #: Why the run failed, one line each (empty: it did not).
        self.problems: list[str] = []
        self.final_converged = False
        self.finals: dict[str, dict[str, Any]] = {}
        self.view: Any = None
        self.json = args.json
        self.live = not args.json and sys.stdout.isatty()
        self.rich = load_rich() if self.live else None
        self.last_line = 0.0

    # -- output ---------------------------------------------------------------------

    def clock(self) -> float:
        return time.monotonic() - self.started

    def event(self, text: str) -> None:
        line = f"{self.clock():6.1f}s  {text}"
        self.events.append(line)
        if self.json:
            return
        if self.view is not None and self.rich is not None:
            self.view.console.print(line)
        else:
            print(line, flush=True)

    def _row(self, node: DemoNode) -> list[str]:
        stats = node.stats
        short = node.name.split("@")[0]
        if stats is None or node.state != "up":
            return [short, node.state, "-", "-", "-", "-", "-", "-"]
        restarts = stats["user_starts"] - stats["users_started"]
        reads = stats["cache_hits"] + stats["cache_misses"]
        hit = f"{100 * stats['cache_hits'] / reads:.0f}%" if reads else "-"
        return [
            short,
            f"up #{node.incarnation}",
            str(stats["users"]),
            f"{node.rate:.0f}",
            str(len(stats["presences"])),
            str(restarts),
            str(stats["emails"]),
            hit,
        ]

    HEADERS = ["NODE", "STATE", "USERS", "MSGS/S", "PRESENCES", "RESTARTS", "EMAILS", "CACHE"]

    def show(self) -> None:
        if self.json:
            return
        rows = [self._row(node) for node in self.nodes]
        if self.view is not None and self.rich is not None:
            title = f"beamlet demo: {self.clock():.1f}s elapsed ({self.args.duration:g}s of chat)"
            self.view.update(
                self.rich.table(title, self.HEADERS, rows, {2, 3, 4, 5, 6, 7}), refresh=True
            )
        elif self.clock() - self.last_line >= 2.0:
            self.last_line = self.clock()
            parts = [
                f"{r[0]} {r[1]} users={r[2]} msgs/s={r[3]} presences={r[4]} restarts={r[5]}"
                for r in rows
            ]
            print(f"{self.clock():6.1f}s  " + " | ".join(parts), flush=True)

    # -- node processes -----------------------------------------------------------------

    async def spawn(self, node: DemoNode) -> None:
        seeds = ",".join(n.address for n in self.nodes if n is not node)
        command = [
            sys.executable,
            "-m",
            "beamlet.apps.cli._demo_node",
            "--name",
            node.name,
            "--cookie-file",
            str(self.cookie_file),
            "--port",
            str(node.port),
            "--seeds",
            seeds,
            "--rooms",
            str(self.args.rooms),
            "--db-node",
            self.db_node,
        ]
        log = _open_log(node.log)  # a local file, opened at once
        try:
            node.process = await trio.lowlevel.open_process(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        finally:
            log.close()
        node.incarnation += 1
        node.state = "starting"
        node.reset()

    def fail(self, text: str) -> None:
        """Record why the run fails, and say it."""
        self.problems.append(text)
        self.event(text)

    async def wait_up(self, node: DemoNode, timeout: float = 30.0) -> None:
        """Connect to ``node`` and wait until it sees every other live node."""
        others = {n.name for n in self.nodes if n is not node and n.state == "up"}
        deadline = trio.current_time() + timeout
        while trio.current_time() < deadline:
            self._check_alive(node)
            if await connect(node.address):
                stats = await self.ask(node, ("stats",))
                if stats is not None and others <= set(stats["nodes"]):
                    node.state = "up"
                    node.observe(stats, self.clock())
                    return
            await trio.sleep(0.2)
        raise CliError(f"node {node.name} did not come up within {timeout:g} s; see {node.log}")

    def _check_alive(self, node: DemoNode) -> None:
        process = node.process
        if process is not None and process.returncode is not None:
            raise CliError(
                f"node {node.name} exited with status {process.returncode} while starting: "
                f"{_tail(node.log, 1)}"
            )

    async def ask(self, node: DemoNode, request: tuple[Any, ...], timeout: float = 3.0) -> Any:
        try:
            return await call((CONTROL, node.name), request, timeout)
        except (CallExitError, CallTimeoutError):
            return None

    async def start_users(self, node: DemoNode) -> None:
        answer = await self.ask(
            node, ("start", node.uids, self.args.interval, self.args.crash_rate), timeout=30.0
        )
        if answer != "ok":
            raise CliError(f"node {node.name} did not start its users ({answer!r})")

    # -- the run ----------------------------------------------------------------------

    async def poll(self) -> None:
        for node in self.nodes:
            process = node.process
            if node.state == "up" and process is not None and process.returncode is not None:
                node.state = "exited"
                node.exits.append(process.returncode)
                self.gave_up.append(node.name)
                self.fail(
                    f"{node.name} exited on its own (status {process.returncode}): "
                    f"a supervisor gave up: {_tail(node.log, 1)}"
                )
                continue
            if node.state == "up":
                stats = await self.ask(node, ("stats",))
                if stats is not None:
                    node.observe(stats, self.clock())
        self.show()

    def converged(self, require: DemoNode | None = None) -> bool:
        """Every live node sees the same presences, none of the killed incarnation, all of its own."""
        live = [n for n in self.nodes if n.state == "up" and n.stats is not None]
        if not live:
            return False
        views = [{tuple(p) for p in n.stats["presences"]} for n in live]  # type: ignore[index]
        if any(view != views[0] for view in views[1:]):
            return False
        boots = {p[2] for p in views[0]}
        if self.killed_boot is not None and self.killed_boot in boots:
            return False
        for node in live:
            stats = node.stats
            assert stats is not None
            own = sum(1 for p in views[0] if p[2] == stats["boot"])
            if own != stats["users"] or stats["users"] != len(node.uids):
                return False
        return require is None or require in live

    async def run(self) -> dict[str, Any]:
        args = self.args
        self.event(
            f"starting {args.nodes} nodes ({', '.join(f'{n.name}:{n.port}' for n in self.nodes)}), "
            f"{args.users} users in {args.rooms} rooms; logs in {self.workdir}"
        )
        for node in self.nodes:
            await self.spawn(node)
        for node in self.nodes:
            await self.wait_up(node)
        self.event("cluster up (full mesh); users joining their rooms")
        for node in self.nodes:
            await self.start_users(node)
        start = trio.current_time()
        kill_at = start + args.duration * KILL_AT
        restart_at = start + args.duration * RESTART_AT
        end = start + args.duration
        killed = restarted = False
        while trio.current_time() < end:
            await self.poll()
            now = trio.current_time()
            if not killed and now >= kill_at:
                killed = True
                await self.kill(self.victim)
            elif killed and not restarted and now >= restart_at:
                restarted = True
                await self.restart(self.victim)
            self.check_convergence()
            await trio.sleep(0.25)
        self.event("posting stops; letting the cluster settle")
        for node in self.nodes:
            if node.state == "up":
                await self.ask(node, ("stop",))
        await self.settle()
        return await self.finish()

    def check_convergence(self) -> None:
        """Note when the presences first converge after the kill, and after the restart."""
        if self.kill_time is not None and self.converged_after_kill is None and self.converged():
            self.converged_after_kill = self.clock() - self.kill_time
            self.event(
                f"presences converged {self.converged_after_kill:.1f}s after the kill "
                f"(the killed node's users are gone everywhere)"
            )
        if (
            self.restart_time is not None
            and self.converged_after_restart is None
            and self.converged(require=self.victim)
        ):
            self.converged_after_restart = self.clock() - self.restart_time
            self.event(
                f"presences converged {self.converged_after_restart:.1f}s after the restart "
                f"(its users are back everywhere)"
            )

    async def kill(self, node: DemoNode) -> None:
        assert node.process is not None
        if node.stats is not None:
            self.killed_boot = node.stats["boot"]
            self.killed_stats = node.stats
        node.process.send_signal(signal.SIGKILL)
        await node.process.wait()
        node.exits.append(None)
        node.state = "killed"
        node.reset()
        self.kill_time = self.clock()
        self.event(f"SIGKILL {node.name} (pid {node.process.pid}): its users vanish with it")

    async def restart(self, node: DemoNode) -> None:
        """Start ``node`` again; if it cannot start, the run goes on without it, and fails."""
        self.event(f"restarting {node.name}")
        await self.spawn(node)
        try:
            await self.wait_up(node)
            await self.start_users(node)
        except CliError as exc:
            process = node.process
            assert process is not None
            if process.returncode is None:
                process.kill()
                await process.wait()
            node.exits.append(process.returncode)
            node.state = "failed"
            node.reset()
            self.fail(f"{node.name} could not be restarted: {exc}")
            return
        self.restart_time = self.clock()
        self.event(f"{node.name} is back (incarnation #{node.incarnation}); its users rejoin")

    async def settle(self) -> None:
        await trio.sleep(1.0)
        # A node that could not be restarted is not waited for (the run has failed already).
        require = self.victim if self.victim.state != "failed" else None
        deadline = trio.current_time() + 10.0
        while trio.current_time() < deadline:
            await self.poll()
            self.check_convergence()
            if self.converged(require=require):
                self.final_converged = True
                return
            await trio.sleep(0.25)
        self.fail("the presences did not converge within 10 s after posting stopped")

    async def finish(self) -> dict[str, Any]:
        for node in self.nodes:
            if node.state == "up":
                final = await self.ask(node, ("final",), timeout=10.0)
                if final is not None:
                    self.finals[node.name] = final
        self.event("stopping the nodes (SIGTERM: each shuts its tree down)")
        await self.stop_all()
        return self.summary()

    async def stop_all(self) -> None:
        for node in self.nodes:
            process = node.process
            if process is None or process.returncode is not None:
                continue
            process.send_signal(signal.SIGTERM)
        for node in self.nodes:
            process = node.process
            if process is None or node.state != "up":
                continue
            with trio.move_on_after(15.0):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
                self.gave_up.append(node.name)
                self.fail(f"{node.name} did not shut down within 15 s: killed")
            node.exits.append(process.returncode)
            node.state = "stopped"
            if process.returncode != 0:
                self.gave_up.append(node.name)
                self.fail(
                    f"{node.name} exited with status {process.returncode} when stopped: "
                    f"{_tail(node.log, 1)}"
                )

    # -- the figures ------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        stats = [n.stats for n in self.nodes if n.stats is not None]
        if self.killed_stats is not None:
            stats.append(self.killed_stats)
        total = {
            key: sum(s[key] for s in stats)
            for key in (
                "posted",
                "received",
                "crashes",
                "emails",
                "cache_hits",
                "cache_misses",
                "invalidations_received",
                "profile_updates",
            )
        }
        restarts = sum(s["user_starts"] - s["users_started"] for s in stats)
        lost, excluded = count_losses(self.finals, self.victim.name)
        reads = total["cache_hits"] + total["cache_misses"]
        converged = (
            self.final_converged
            and self.converged_after_kill is not None
            and self.converged_after_restart is not None
        )
        gave_up = sorted(set(self.gave_up))
        problems = list(self.problems)
        if self.converged_after_kill is None:
            problems.append(f"the presences did not converge after the kill of {self.victim.name}")
        if self.converged_after_restart is None and self.victim.state != "failed":
            problems.append(
                f"the presences did not converge after the restart of {self.victim.name}"
            )
        return {
            "ok": converged and not gave_up and not problems,
            "converged": converged,
            "supervisors_gave_up": gave_up,
            "problems": problems,
            "nodes": self.args.nodes,
            "users": self.args.users,
            "rooms": self.args.rooms,
            "duration_s": self.args.duration,
            "elapsed_s": round(self.clock(), 2),
            "killed_node": self.victim.name,
            "node_restarts": self.victim.incarnation - 1,
            "messages_posted": total["posted"],
            "messages_delivered": total["received"],
            "messages_lost": lost,
            "messages_in_killed_window": excluded,
            "presence_convergence_after_kill_s": _round(self.converged_after_kill),
            "presence_convergence_after_restart_s": _round(self.converged_after_restart),
            "cache_reads": reads,
            "cache_hit_rate": round(total["cache_hits"] / reads, 3) if reads else None,
            "cache_invalidations": total["invalidations_received"],
            "profile_updates": total["profile_updates"],
            "emails_sent": total["emails"],
            "user_crashes": total["crashes"],
            "supervisor_restarts": restarts,
            "exit_statuses": {n.name: n.exits for n in self.nodes},
        }


def count_losses(finals: dict[str, dict[str, Any]], victim: str) -> tuple[int, int]:
    """Messages lost outside the killed node's window, and messages left out as in it.

    Args:
        finals: per live node, its ``("final",)`` answer: ``published`` (publisher
            pid -> ``(room, messages it published)``) and ``heard`` (``(room, publisher,
            first, last, count)`` per listener entry).
        victim: the name of the node that was killed and restarted.

    Returns:
        ``(lost, excluded)``: ``lost`` counts, for each listener and publisher
        of nodes never killed, every message of the publisher the listener
        did not get; for pairs involving the restarted incarnation, those
        missing after the first the listener got. ``excluded`` counts what
        listeners got from publishers of the killed incarnation (whose own
        totals went down with it).
    """
    published: dict[Any, tuple[str, int]] = {}
    for final in finals.values():
        published.update(final["published"])
    lost = excluded = 0
    heard: set[tuple[str, Any, str]] = set()
    for listener_node, final in finals.items():
        for room, pid, first, _last, count in final["heard"]:
            if pid not in published:  # a publisher of the killed incarnation
                excluded += count
                continue
            total = published[pid][1]
            heard.add((room, pid, listener_node))
            start = first if victim in (listener_node, pid.node) else 1
            lost += max(0, total - start + 1 - count)
    # A publisher of a node never killed that a listener of another such node never heard.
    for pid, (room, total) in published.items():
        if pid.node == victim:
            continue
        for listener_node in finals:
            if listener_node != victim and (room, pid, listener_node) not in heard:
                lost += total
    return lost, excluded


def _open_log(path: Path) -> Any:
    return open(path, "ab")  # closed once the child process holds it


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def _print_summary(summary: dict[str, Any], demo: Demo) -> None:
    def show(value: Any, unit: str = "") -> str:
        return "-" if value is None else f"{value}{unit}"

    rate = summary["cache_hit_rate"]
    rows = [
        ["messages posted", show(summary["messages_posted"])],
        ["messages delivered", show(summary["messages_delivered"])],
        ["messages lost (outside the killed window)", show(summary["messages_lost"])],
        ["messages of the killed incarnation", show(summary["messages_in_killed_window"])],
        ["presences converged after the kill", show(summary["presence_convergence_after_kill_s"], " s")],
        ["presences converged after the restart", show(summary["presence_convergence_after_restart_s"], " s")],
        ["cache hit rate", "-" if rate is None else f"{100 * rate:.1f}% of {summary['cache_reads']}"],
        ["cache invalidations received", show(summary["cache_invalidations"])],
        ["emails sent through the pool", show(summary["emails_sent"])],
        ["user crashes / restarts", f"{summary['user_crashes']} / {summary['supervisor_restarts']}"],
        ["node killed and restarted", summary["killed_node"].split("@")[0]],
        ["supervisors that gave up", ", ".join(summary["supervisors_gave_up"]) or "none"],
        *(["problem", problem] for problem in summary["problems"]),
        ["result", "OK: the cluster healed" if summary["ok"] else "FAILED"],
    ]  # fmt: skip
    if demo.rich is not None:
        demo.rich.print(demo.rich.table("summary", ["", ""], rows, {1}))
    else:
        print()
        print(plain_table(["summary", ""], rows, set()))


def command(args: argparse.Namespace) -> int:
    """``beamlet demo``: run the demo; 0 if the cluster healed, 1 if not."""
    _check(args)
    with tempfile.TemporaryDirectory(prefix="beamlet-demo-") as tmp:
        workdir = Path(tmp)
        cookie_file = workdir / "cookie"
        fd = os.open(cookie_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
        cookie = Cookie(cookie_file.read_bytes())
        demo = Demo(args, workdir, cookie_file)
        try:
            summary = trio.run(_main, demo, cookie)
        finally:
            for node in demo.nodes:  # after an error: leave no node behind
                process = node.process
                if process is not None and process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(process.pid, signal.SIGKILL)
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        _print_summary(summary, demo)
    return 0 if summary["ok"] else EXIT_FAILURE


async def _main(demo: Demo, cookie: Cookie) -> dict[str, Any]:
    with captured_logs():
        async with open_node(
            "demo-console-" + secrets.token_hex(3) + "@127.0.0.1",
            cookie=cookie,
            hidden=True,
            watchdog_threshold=None,
            ticktime=4.0,
        ) as node:
            view = demo.rich.live() if demo.rich is not None else None
            if view is not None:
                demo.view = view
                with view:
                    return await _run(node, demo)
            return await _run(node, demo)


async def _run(node: Any, demo: Demo) -> dict[str, Any]:
    # Captured: a CliError is an answer, not a crash to report.
    result: outcome.Outcome[dict[str, Any]] = await node.run(outcome.acapture, demo.run)
    return result.unwrap()
