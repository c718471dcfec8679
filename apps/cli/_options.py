"""What the subcommands share: the cookie, node addresses, seeds, TLS, logging."""

from __future__ import annotations

import argparse
import logging
import os
import stat
import sys
from pathlib import Path

from beamlet.cluster import Cookie, CookieError, TLSConfig, validate_node_name

from ._errors import EXIT_USAGE, CliError

__all__ = [
    "NodeAddress",
    "add_cookie_option",
    "add_timeout_option",
    "add_tls_options",
    "configure_logging",
    "parse_node_address",
    "parse_seeds",
    "read_cookie",
    "tls_config",
]


def add_cookie_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cookie-file",
        metavar="PATH",
        help="read the cluster cookie from PATH (mode 0600); default: $BEAMLET_COOKIE, "
        "else $BEAMLET_COOKIE_FILE, else ~/.beamlet/cookie",
    )


def add_timeout_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="give up on connecting, or on an answer, after S seconds (default: %(default)s)",
    )


def add_tls_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tls-cert", metavar="PEM", help="this node's certificate (TLS)")
    parser.add_argument("--tls-key", metavar="PEM", help="its private key (if not in --tls-cert)")
    parser.add_argument(
        "--tls-ca", metavar="PEM", help="the CA that signs the cluster's certificates"
    )


def read_cookie(path: str | None) -> Cookie | None:
    """The cookie in ``path`` (None: let beamlet.cluster find it: env, then the default file).

    Raises:
        CliError: the file is missing, unreadable, open to others, or the cookie too short.
    """
    if path is None:
        return None
    file = Path(path)
    try:
        mode = file.stat().st_mode
        data = file.read_bytes().strip()
    except FileNotFoundError:
        raise CliError(f"cookie file {path} does not exist", EXIT_USAGE) from None
    except OSError as exc:
        raise CliError(f"cannot read cookie file {path}: {exc.strerror}", EXIT_USAGE) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CliError(
            f"cookie file {path} is accessible by group or others "
            f"(mode {stat.S_IMODE(mode):o}); make it 0600 (chmod 600 {path})",
            EXIT_USAGE,
        )
    try:
        return Cookie(data)
    except CookieError as exc:
        raise CliError(f"cookie file {path}: {exc}", EXIT_USAGE) from None


class NodeAddress:
    """Where to reach a node: ``name@host:port`` or ``host:port``.

    Attributes:
        name: the node name, if given.
        address: ``"host:port"``.
    """

    __slots__ = ("address", "name")

    def __init__(self, name: str | None, address: str) -> None:
        self.name = name
        self.address = address

    def __str__(self) -> str:
        return f"{self.name} ({self.address})" if self.name else self.address


def _split_host_port(text: str, what: str) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        raise CliError(f"malformed {what} {text!r}: expected HOST:PORT", EXIT_USAGE)
    return host, int(port_text)


def parse_node_address(text: str) -> NodeAddress:
    """Parse a NODE argument: ``name@host:port`` or ``host:port``.

    beamlet has no port mapper (Erlang's epmd): the port is part of the address.

    Raises:
        CliError: the argument is malformed.
    """
    name: str | None = None
    if "@" in text:
        name_part, _, rest = text.partition("@")
        host, sep, port_text = rest.rpartition(":")
        if not sep or not port_text.isdigit():
            raise CliError(
                f"malformed node {text!r}: expected NAME@HOST:PORT or HOST:PORT "
                "(beamlet has no port mapper: give the port the node listens on)",
                EXIT_USAGE,
            )
        name = f"{name_part}@{host}"
        try:
            validate_node_name(name)
        except ValueError as exc:
            raise CliError(f"malformed node {text!r}: {exc}", EXIT_USAGE) from None
        text = f"{host}:{port_text}"
    host, port = _split_host_port(text, "node address")
    return NodeAddress(name, f"{host}:{port}")


def parse_seeds(text: str | None) -> list[str]:
    """Parse ``--seeds HOST:PORT,...``.

    Raises:
        CliError: a seed is malformed.
    """
    if not text:
        return []
    seeds = []
    for item in text.split(","):
        item = item.strip()
        host, port = _split_host_port(item, "seed")
        seeds.append(f"{host}:{port}")
    return seeds


def tls_config(args: argparse.Namespace) -> TLSConfig | None:
    """The TLS contexts from ``--tls-cert/--tls-key/--tls-ca`` (None without them).

    Raises:
        CliError: an option is missing, or a file cannot be loaded.
    """
    cert, key, ca = args.tls_cert, args.tls_key, args.tls_ca
    if cert is None and key is None and ca is None:
        return None
    if cert is None or ca is None:
        raise CliError("TLS needs both --tls-cert and --tls-ca", EXIT_USAGE)
    try:
        return TLSConfig.from_files(certfile=cert, keyfile=key, cafile=ca)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot load the TLS files: {exc}", EXIT_USAGE) from None


def configure_logging(level: str) -> None:
    """Log lines to stderr, one per record, for a terminal or a service manager."""
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("INVOCATION_ID") or os.environ.get("JOURNAL_STREAM"):
        fmt = "%(levelname)s %(name)s: %(message)s"  # systemd adds the time
    else:
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
