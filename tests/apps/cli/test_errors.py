"""Errors a user hits: one clear line on stderr, a non-zero status, never a traceback."""

from __future__ import annotations

import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from beamlet.apps.cli import main

from .conftest import HERE, Service, beamlet, one_line


class InProcess:
    """What ``main(argv)`` printed and returned, shaped as a CompletedProcess."""

    def __init__(self, returncode: int, stderr: str) -> None:
        self.returncode = returncode
        self.stderr = stderr


def in_process(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> InProcess:
    """``beamlet ARGS`` run by ``main`` in this process (for the many variants of an error
    that a subprocess test covers once)."""
    monkeypatch.chdir(HERE)
    monkeypatch.setattr(sys, "path", list(sys.path))  # `run` adds the directory to it
    try:
        status = main(list(args))
    except SystemExit as exc:  # argparse's own exit
        status = exc.code  # type: ignore[assignment]
    return InProcess(status, capsys.readouterr().err)


@pytest.fixture
def taken_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_no_such_node(cookie_file: Path) -> None:
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens there now
    result = beamlet("ping", f"ghost@127.0.0.1:{port}", "--cookie-file", str(cookie_file))
    one_line(result, 1, "pang", f"127.0.0.1:{port}", "connection refused")
    result = beamlet("top", f"127.0.0.1:{port}", "--once", "--cookie-file", str(cookie_file))
    one_line(result, 1, "cannot connect")


def test_wrong_cookie(service: tuple[Service, str], tmp_path: Path) -> None:
    _svc, address = service
    other = tmp_path / "other"
    other.write_text("another-cookie-entirely-0123456789")
    other.chmod(0o600)
    result = beamlet("ping", address, "--cookie-file", str(other))
    one_line(result, 1, "pang", "bad cookie")
    result = beamlet("top", address, "--once", "--cookie-file", str(other))
    one_line(result, 1, "bad cookie")


def test_a_cookie_created_by_the_command_itself_is_named(
    service: tuple[Service, str], tmp_path: Path
) -> None:
    """No cookie anywhere: ``ping`` makes ~/.beamlet/cookie, and its "bad cookie" says so."""
    _svc, address = service
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "BEAMLET_COOKIE": "", "BEAMLET_COOKIE_FILE": ""}
    created = home / ".beamlet" / "cookie"
    for command in (["ping", address], ["top", address, "--once"]):
        if created.exists():
            created.unlink()  # each command starts without a cookie
        result = beamlet(*command, env=env)
        one_line(
            result,
            1,
            "bad cookie",
            f"no cookie was given, so this command created a new random one in {created}; "
            "the node uses another, and both nodes must share one (pass the node's cookie "
            "with --cookie-file PATH, or set $BEAMLET_COOKIE)",
        )
        assert created.exists()
    # The second time the file exists: the usual hint, not "created".
    result = beamlet("ping", address, env=env)
    one_line(result, 1, "bad cookie", "is the cookie the node's? see --cookie-file")
    assert "created" not in result.stderr


def test_the_wrong_node_at_an_address(service: tuple[Service, str], cookie_file: Path) -> None:
    _svc, address = service
    result = beamlet("ping", f"other@{address}", "--cookie-file", str(cookie_file))
    one_line(result, 1, "is svc@127.0.0.1, not other@127.0.0.1")


def test_a_seed_that_refuses_or_is_not_there_is_a_warning_line_and_the_node_serves_on(
    service: tuple[Service, str], tmp_path: Path
) -> None:
    """For ``run``, a seed is retried (it may start later): one line each, not an exit."""
    _svc, address = service
    other = tmp_path / "other"
    other.write_text("another-cookie-entirely-0123456789")
    other.chmod(0o600)
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    nowhere = f"127.0.0.1:{free.getsockname()[1]}"
    free.close()
    node = Service(
        ["cli_app:children", "--name", "b@127.0.0.1", "--cookie-file", str(other),
         "--seeds", f"{address},{nowhere}"]
    )  # fmt: skip
    try:
        own, warnings = None, []
        while own is None or len(warnings) < 2:  # in either order
            line = node.output.next(timeout=20)
            assert line is not None, f"the node ended; it said {node.seen}"
            if listening := re.search(r"listening on (\S+)", line):
                own = listening.group(1)
            if " WARNING " in line:
                warnings.append(line[line.index("WARNING") :])
        assert sorted(warnings) == sorted([
            f"WARNING beamlet.cluster: could not connect to svc@127.0.0.1 ({address}): "
            "refused by the peer: bad cookie (the two nodes have different cookies)",
            f"WARNING beamlet.cluster: could not connect to {nowhere}: "
            f"all attempts to connect to {nowhere} failed",
        ])  # fmt: skip
        assert not any("Traceback" in line for line in node.seen)
        assert beamlet("ping", own, "--cookie-file", str(other)).returncode == 0
        assert node.process.poll() is None
    finally:
        node.stop()


def test_port_in_use(taken_port: int, cookie_file: Path) -> None:
    result = beamlet(
        "run", "cli_app:children", "--name", "p@127.0.0.1", "--port", str(taken_port),
        "--cookie-file", str(cookie_file),
    )  # fmt: skip
    one_line(result, 1, f"port {taken_port} is already in use")


def test_a_public_host_without_tls_names_the_cli_flags(cookie_file: Path) -> None:
    """The CLI's words (``--tls-cert``, ``--insecure``), not the Python API's (``tls=...``)."""
    result = beamlet(
        "run", "cli_app:children", "--name", "x@10.1.2.3", "--cookie-file", str(cookie_file)
    )
    one_line(
        result,
        2,
        "cannot start node x@10.1.2.3: refusing to listen on 10.1.2.3 without TLS; "
        "give --tls-cert and --tls-ca (and --tls-key if the key is not in the cert), "
        "or --insecure",
    )
    assert "tls=" not in result.stderr and "insecure=True" not in result.stderr


def test_module_or_attribute_not_found(cookie_file: Path) -> None:
    for target, fragment in [
        ("no_such_module:children", "no module named 'no_such_module'"),
        ("cli_app:no_such_children", "no_such_children"),
    ]:
        result = beamlet("run", target, "--name", "m@127.0.0.1", "--cookie-file", str(cookie_file))
        one_line(result, 1, f"cannot run {target}", fragment)


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("cli_app", "expected 'module:attribute'"),
        ("cli_app:Greeter", "is a GenServer class, not a list of child specs"),
        ("cli_app:Greeter", "e.g. `children = [Greeter.child_spec()]`"),
        ("cli_app:Greeter.__name__", "must be a list of child specs"),
        ("cli_app:Greeter.nope", "nope"),
    ],
)
def test_targets_that_are_not_a_list_of_children(
    target: str,
    fragment: str,
    cookie_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = ["run", target, "--name", "m@127.0.0.1", "--cookie-file", str(cookie_file)]
    one_line(in_process(capsys, monkeypatch, *argv), 1, f"cannot run {target}", fragment)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--seeds", "nowhere"], "malformed seed 'nowhere'"),
        (["--seeds", "127.0.0.1:1,host:"], "malformed seed 'host:'"),
        (["--seeds", "127.0.0.1:99999"], "malformed seed"),
        (["--name", "no-host"], "bad --name"),
        (["--port", "70000"], "bad --port"),
        (["--port", "x"], "invalid int value"),
        (["--strategy", "all_for_none"], "invalid choice"),
        (["--tls-cert", "c.pem"], "TLS needs both"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--discovery-dns", "headless.svc"], "malformed --discovery-dns 'headless.svc'"),
    ],
)
def test_malformed_seeds_and_bad_options(
    args: list[str],
    fragment: str,
    cookie_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = ["run", "cli_app:children", "--name", "o@127.0.0.1", "--cookie-file", str(cookie_file)]
    one_line(in_process(capsys, monkeypatch, *argv, *args), 2, fragment)


def test_malformed_seeds_and_bad_options_as_a_subprocess(cookie_file: Path) -> None:
    argv = ["run", "cli_app:children", "--name", "o@127.0.0.1", "--cookie-file", str(cookie_file)]
    one_line(beamlet(*argv, "--seeds", "127.0.0.1:1,nowhere"), 2, "malformed seed 'nowhere'")
    one_line(beamlet(*argv, "--bogus"), 2, "unrecognized arguments: --bogus")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["ping", "nohost"], "malformed node address 'nohost'"),
        (["ping", "a@b"], "expected NAME@HOST:PORT or HOST:PORT"),
        (["top", "nohost", "--once"], "malformed node address 'nohost'"),
        (["top", "a@b", "--once"], "expected NAME@HOST:PORT or HOST:PORT"),
        (["top", "bad name@127.0.0.1:4370", "--once"], "malformed node 'bad name@"),
        (["top", "127.0.0.1:4370", "--once", "--timeout", "0"], "bad --timeout"),
        (["ping"], "required: NODE"),
        (["top", "127.0.0.1:1", "--limit", "0"], "bad --limit 0"),
        (["top", "127.0.0.1:1", "--sort", "cpu"], "invalid choice: 'cpu'"),
        (["top", "127.0.0.1:1", "--interval", "0"], "bad --interval"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_arguments_to_the_other_commands(
    args: list[str],
    fragment: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one_line(in_process(capsys, monkeypatch, *args), 2, fragment)


def test_cookie_file_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "missing"
    result = beamlet("ping", "127.0.0.1:1", "--cookie-file", str(missing))
    one_line(result, 2, f"cookie file {missing} does not exist")
    shared = tmp_path / "shared"
    shared.write_text("a-cookie-that-is-long-enough-0123")
    shared.chmod(0o644)
    result = in_process(capsys, monkeypatch, "ping", "127.0.0.1:1", "--cookie-file", str(shared))
    one_line(result, 2, "accessible by group or others", "chmod 600")
    short = tmp_path / "short"
    short.write_text("tiny")
    short.chmod(0o600)
    argv = ["run", "cli_app:children", "--name", "c@127.0.0.1", "--cookie-file", str(short)]
    one_line(in_process(capsys, monkeypatch, *argv), 2, "at least 16 bytes")


def test_no_command_prints_the_help_and_fails() -> None:
    result = beamlet()
    assert result.returncode == 2
    assert "usage: beamlet" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("command", "option", "default"),
    [
        ("run", "--max-restarts", "3"),
        ("run", "--max-seconds", "5.0"),
        ("run", "--ticktime", "15.0"),
        ("ping", "--timeout", "5.0"),
        ("top", "--timeout", "5.0"),
        ("top", "--interval", "1.0"),
    ],
)
def test_every_numeric_option_has_help_and_shows_its_default(
    command: str, option: str, default: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    # The option's entry: its line and the wrapped lines under it, up to the next option.
    [start] = [i for i, line in enumerate(lines) if line.startswith(f"  {option} ")]
    entry = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith("   "):
            break
        entry.append(line)
    described = " ".join(" ".join(entry).split()).partition(" ")[2].partition(" ")[2]
    assert len(described) > 20, described  # a sentence, not only the metavar
    assert re.search(rf"default: {re.escape(default)}\)$", described), described
