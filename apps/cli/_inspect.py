"""``beamlet ping NODE`` and ``beamlet top NODE``: a live node seen from a hidden node."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import trio
from beamlet.cluster.introspect import (
    NODE_TABLE_BUDGET,
    NODE_TABLE_BURST,
    SORT_KEYS,
    IntrospectError,
    node_info,
    process_table,
)

from ._console import run_console
from ._errors import EXIT_USAGE, CliError
from ._options import (
    add_cookie_option,
    add_timeout_option,
    add_tls_options,
    parse_node_address,
    read_cookie,
    tls_config,
)
from ._rich import load_rich
from ._table import format_bytes, plain_table

__all__ = ["BUSY_WAIT_MAX", "add_parsers", "ping", "top", "watch"]

NODE_HELP = "NAME@HOST:PORT or HOST:PORT (the address the node listens on)"


def add_parsers(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ping",
        help="check that a node answers (pong, exit 0) or not (pang, exit 1)",
        description="Connect to NODE as a hidden node with the cookie and ask it for its "
        "totals. Prints 'pong NODE in T ms' and exits 0, or says why not and exits 1.",
    )
    parser.add_argument("node", metavar="NODE", help=NODE_HELP)
    add_cookie_option(parser)
    add_tls_options(parser)
    add_timeout_option(parser)
    parser.set_defaults(command=ping)

    parser = subparsers.add_parser(
        "top",
        help="a live table of a node's processes",
        description="Connect to NODE as a hidden node (not part of its cluster) and show its "
        "processes, largest first by --sort, and its totals. Read-only: it asks the node's "
        "introspection service (beamlet.cluster.introspect), nothing else.",
    )
    parser.add_argument("node", metavar="NODE", help=NODE_HELP)
    parser.add_argument(
        "--sort",
        choices=["mailbox", "memory", "reductions"],
        default="reductions",
        help="what to sort by, largest first (reductions: calls to receive, a work counter)",
    )
    parser.add_argument("--limit", type=int, default=20, metavar="N", help="rows to show")
    parser.add_argument("--once", action="store_true", help="print one plain snapshot and exit")
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds between two tables in the live view (default: %(default)s)",
    )
    add_cookie_option(parser)
    add_tls_options(parser)
    add_timeout_option(parser)
    parser.set_defaults(command=top)


def _check_timeout(value: float, option: str) -> None:
    if not value > 0:
        raise CliError(f"bad {option} {value:g}: expected a number of seconds > 0", EXIT_USAGE)


def ping(args: argparse.Namespace) -> int:
    """``beamlet ping``: 0 on pong, 1 on pang."""
    target = parse_node_address(args.node)
    _check_timeout(args.timeout, "--timeout")
    cookie = read_cookie(args.cookie_file)
    tls = tls_config(args)

    async def ask(peer: str) -> tuple[str, float]:
        start = time.perf_counter()
        info = await node_info(peer, timeout=args.timeout)
        return info["name"], time.perf_counter() - start

    try:
        name, elapsed = trio.run(run_console, target, cookie, tls, ask, args.timeout)
    except CliError as exc:
        raise CliError(f"pang: {exc}", exc.status) from None
    except IntrospectError as exc:
        raise CliError(f"pang: {exc}") from None
    print(f"pong {name} ({target.address}) in {elapsed * 1000:.1f} ms")
    return 0


COLUMNS = ["PID", "NAME", "FUNCTION", "STATUS", "MBOX", "LINKS", "MONS", "MEMORY", "REDS"]
RIGHT = {4, 5, 6, 7, 8}
#: The live view adds the reductions per second since the last refresh.
LIVE_COLUMNS = [*COLUMNS, "REDS/S"]
LIVE_RIGHT = {*RIGHT, 9}


def _cells(row: dict[str, Any], rates: dict[Any, float] | None) -> list[str]:
    """A row of the table; ``rates`` (the live view): reductions per second by pid.

    The pid is shown as ``<id>``: its node is the one in the title.
    """
    pid = row["pid"]
    function = row["function"]
    if len(function) > 40:
        function = "..." + function[-37:]
    cells = [
        f"<{pid.id}>",
        row["name"] or "",
        function,
        row["status"],
        str(row["mailbox"]),
        str(row["links"]),
        str(row["monitors"]),
        format_bytes(row["memory"]),
        str(row["reductions"]),
    ]
    if rates is not None:
        cells.append(f"{rates[pid]:.0f}" if pid in rates else "-")
    return cells


def _summary(info: dict[str, Any], total: int) -> str:
    hidden = len(info["hidden_nodes"])
    return (
        f"node {info['name']} (os pid {info['os_pid']}): {total} processes, "
        f"{info['registered']} registered, {len(info['nodes'])} connected nodes"
        f"{f' (+{hidden} hidden)' if hidden else ''}, "
        f"distribution in {format_bytes(info['bytes_in'])} / out {format_bytes(info['bytes_out'])}"
    )


#: The longest wait between two tables while the node answers "busy": the time
#: a node's budget takes to refill from empty.
BUSY_WAIT_MAX = NODE_TABLE_BURST / NODE_TABLE_BUDGET


async def watch(
    peer: str,
    *,
    sort: str,
    limit: int,
    timeout: float,
    interval: float,
    show: Callable[[str, list[list[str]], bool], None],
) -> None:
    """The live view's loop: ``show(title, cells, busy)`` a table every ``interval`` seconds.

    When the node answers "busy" (it spent its time budget for tables), the
    last table is shown again with a "busy" note in its title (the totals are
    fresh: they are cheap) and the wait doubles, up to ``BUSY_WAIT_MAX``
    seconds, until a table comes again. Any other error ends it.

    Cancellation:
        A checkpoint; it runs until cancelled.
    """
    previous: dict[Any, int] = {}
    last = trio.current_time()
    cells: list[list[str]] = []
    wait = interval
    while True:
        info = await node_info(peer, timeout=timeout)
        try:
            table = await process_table(peer, sort=sort, limit=limit, timeout=timeout)
        except IntrospectError as exc:
            if exc.reason != "busy":
                raise
            wait = max(interval, min(2 * wait, BUSY_WAIT_MAX))
            title = (
                f"{_summary(info, info['processes'])} [busy: the node refused a new table "
                f"(over its time budget): showing the last one; next try in {wait:g} s]"
            )
            show(title, cells, True)
        else:
            wait = interval
            now = trio.current_time()
            rows = table["processes"]
            rates = {
                r["pid"]: (r["reductions"] - previous[r["pid"]]) / (now - last)
                for r in rows
                if r["pid"] in previous and now > last
            }
            previous = {r["pid"]: r["reductions"] for r in rows}
            last = now
            cells = [_cells(r, rates) for r in rows]
            show(_summary(info, table["total"]), cells, False)
        await trio.sleep(wait)


def top(args: argparse.Namespace) -> int:
    """``beamlet top``: one snapshot (``--once``), or a live view until Ctrl-C."""
    target = parse_node_address(args.node)
    if not 1 <= args.limit <= 1000:
        raise CliError(f"bad --limit {args.limit}: expected 1..1000", EXIT_USAGE)
    _check_timeout(args.timeout, "--timeout")
    _check_timeout(args.interval, "--interval")
    assert args.sort in SORT_KEYS
    cookie = read_cookie(args.cookie_file)
    tls = tls_config(args)
    live = not args.once and sys.stdout.isatty()
    rich = load_rich() if live else None
    if live and rich is None:
        print(
            "beamlet: note: rich is not installed (pip install 'beamlet[cli]'): "
            "printing plain snapshots",
            file=sys.stderr,
        )

    async def snapshot(peer: str) -> tuple[dict[str, Any], dict[str, Any]]:
        info = await node_info(peer, timeout=args.timeout)
        table = await process_table(peer, sort=args.sort, limit=args.limit, timeout=args.timeout)
        return info, table

    async def live_view(peer: str) -> None:
        view = rich.live() if rich is not None else None

        def show(title: str, cells: list[list[str]], busy: bool) -> None:
            if view is not None and rich is not None:
                view.update(
                    rich.table(title, LIVE_COLUMNS, cells, LIVE_RIGHT, frozenset({1, 2})),
                    refresh=True,
                )
            else:
                print(title)
                print(plain_table(LIVE_COLUMNS, cells, LIVE_RIGHT))
                print(flush=True)

        with view if view is not None else _nothing():
            await watch(
                peer,
                sort=args.sort,
                limit=args.limit,
                timeout=args.timeout,
                interval=args.interval,
                show=show,
            )

    try:
        if args.once:
            info, table = trio.run(run_console, target, cookie, tls, snapshot, args.timeout)
            print(_summary(info, table["total"]))
            print(plain_table(COLUMNS, [_cells(r, None) for r in table["processes"]], RIGHT))
            return 0
        trio.run(run_console, target, cookie, tls, live_view, args.timeout)
    except IntrospectError as exc:
        raise CliError(str(exc)) from None
    except KeyboardInterrupt:
        return 0
    return 0


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
