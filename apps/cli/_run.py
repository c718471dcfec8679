"""``beamlet run MODULE:CHILDREN``: a supervision tree as a service on a distributed node."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from functools import partial
from typing import Any

from beamlet.cluster import (
    CookieError,
    DNSPoll,
    InsecureListenError,
    listen_address,
    node_name,
    open_node,
    validate_node_name,
)
from beamlet.supervisors import load_children, run_application

from ._errors import EXIT_USAGE, CliError
from ._options import (
    add_cookie_option,
    add_tls_options,
    configure_logging,
    parse_seeds,
    read_cookie,
    tls_config,
)

__all__ = ["add_parser", "command"]

logger = logging.getLogger("beamlet.cli")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a supervision tree as a service on a distributed node",
        description=(
            "Boot the children named by MODULE:CHILDREN (a list of child specs, or a "
            "function returning one) under a root supervisor on a distributed node, and "
            "serve until SIGTERM or SIGINT, then shut the tree down in order. Exit status: "
            "0 after a graceful shutdown, 1 if the tree failed to start or its root "
            "supervisor gave up, 128+N after a second signal N during the shutdown."
        ),
    )
    parser.add_argument("target", metavar="MODULE:CHILDREN", help="e.g. myapp.tree:children")
    parser.add_argument("--name", required=True, metavar="NAME@HOST", help="the node name")
    add_cookie_option(parser)
    parser.add_argument(
        "--seeds", metavar="HOST:PORT,...", help="nodes to join (comma-separated addresses)"
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free one)")
    parser.add_argument(
        "--discovery-dns",
        metavar="NAME:PORT",
        help="find the other nodes by resolving NAME every 5 s (a Kubernetes headless "
        "service...); they listen on PORT",
    )
    add_tls_options(parser)
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow listening on a non-loopback host without TLS",
    )
    parser.add_argument(
        "--strategy",
        choices=["one_for_one", "one_for_all", "rest_for_one"],
        default="one_for_one",
        help="the root supervisor's strategy",
    )
    parser.add_argument(
        "--max-restarts",
        type=int,
        default=3,
        metavar="N",
        help="the root supervisor gives up (and the command exits 1) after more than N "
        "restarts within --max-seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=5.0,
        metavar="S",
        help="the window for --max-restarts, in seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=None,
        metavar="S",
        help="kill the tree if it has not shut down after S seconds",
    )
    parser.add_argument(
        "--ticktime",
        type=float,
        default=15.0,
        metavar="S",
        help="a connected node from which nothing arrives for S seconds is declared "
        "down (Erlang's net_ticktime; default: %(default)s)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.set_defaults(command=command)


def parse_discovery(text: str | None) -> list[DNSPoll]:
    """``--discovery-dns NAME:PORT`` as a ``DNSPoll`` strategy (none without it).

    Raises:
        CliError: the option is malformed.
    """
    if text is None:
        return []
    name, sep, port = text.rpartition(":")
    if not sep or not name or not port.isdigit() or not 0 < int(port) <= 65535:
        raise CliError(f"malformed --discovery-dns {text!r}: expected NAME:PORT", EXIT_USAGE)
    return [DNSPoll(name, int(port))]


def command(args: argparse.Namespace) -> int:
    """Run the service; return the runner's exit status."""
    try:
        validate_node_name(args.name)
    except ValueError as exc:
        raise CliError(f"bad --name: {exc}", EXIT_USAGE) from None
    if not 0 <= args.port <= 65535:
        raise CliError(f"bad --port {args.port}: expected 0..65535", EXIT_USAGE)
    seeds = parse_seeds(args.seeds)
    discovery = parse_discovery(args.discovery_dns)
    cookie = read_cookie(args.cookie_file)
    tls = tls_config(args)
    # As `python -m` does: modules of the current directory can be named.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        children = load_children(args.target)
    except ModuleNotFoundError as exc:
        raise CliError(f"cannot run {args.target}: no module named {exc.name!r}") from None
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        raise CliError(f"cannot run {args.target}: {exc}") from None
    configure_logging(args.log_level)

    def ready(root: object) -> None:
        logger.info(
            "node %s listening on %s (root supervisor %s)", node_name(), listen_address(), root
        )

    try:
        return run_application(
            children,
            node=partial(
                open_node,
                args.name,
                cookie=cookie,
                port=args.port,
                seeds=seeds,
                discovery=discovery,
                tls=tls,
                insecure=args.insecure,
                ticktime=args.ticktime,
            ),
            strategy=args.strategy,
            max_restarts=args.max_restarts,
            max_seconds=args.max_seconds,
            shutdown_timeout=args.shutdown_timeout,
            on_ready=ready,
            log_level=None,
        )
    except CookieError as exc:
        raise CliError(f"bad cookie: {exc}", EXIT_USAGE) from None
    except InsecureListenError as exc:
        raise CliError(
            f"cannot start node {args.name}: refusing to listen on {exc.host} without TLS; "
            "give --tls-cert and --tls-ca (and --tls-key if the key is not in the cert), "
            "or --insecure",
            EXIT_USAGE,
        ) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CliError(
                f"cannot start node {args.name}: port {args.port} is already in use"
            ) from None
        raise CliError(f"cannot start node {args.name}: {exc}") from None
    except ValueError as exc:
        raise CliError(f"cannot start node {args.name}: {exc}", EXIT_USAGE) from None
