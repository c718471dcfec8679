"""The guides of the command and of deployment: their examples run, their configurations parse."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from beamlet.apps.cli._main import _parser
from docs_checks import (
    DOCS,
    EXAMPLES,
    REPO,
    check_guide_shows_examples,
    code_blocks,
    run_python,
)


def parses(argv: list[str]) -> None:
    """``beamlet ARGV`` is a valid command line (checked by the command's own parser)."""
    assert Path(argv[0]).name == "beamlet", argv
    _parser().parse_args(argv[1:])


# -- the index ----------------------------------------------------------------------------


def test_the_index_links_every_guide_and_no_link_is_dead() -> None:
    index = (DOCS / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", index)
    assert links
    for link in links:
        assert (DOCS / link).is_file(), link
    for guide in sorted(DOCS.glob("*.md")):
        if guide.name != "README.md":
            assert guide.name in links, guide.name


def test_every_relative_link_of_these_guides_resolves() -> None:
    for name in ["deployment.md", "not.md", "README.md"]:
        for link in re.findall(r"\]\(([^)#:]+)\)", (DOCS / name).read_text()):
            assert (DOCS / link).is_file(), (name, link)


# -- deployment.md -----------------------------------------------------------------------

DEPLOYMENT = DOCS / "deployment.md"


def test_the_systemd_unit_runs_a_valid_command_and_restarts_on_failure() -> None:
    [unit] = code_blocks(DEPLOYMENT, "ini")
    lines = dict(
        line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#")
    )
    argv = shlex.split(lines["ExecStart"])
    parses(argv)
    assert argv[1:3] == ["run", "getting_started_greeter:children"]
    assert lines["KillSignal"] == "SIGTERM"
    assert lines["Restart"] == "on-failure"  # exit 1: the tree failed or gave up
    assert (REPO / "docs" / "examples" / "getting_started_greeter.py").is_file()


def test_the_container_runs_a_valid_command_that_receives_sigterm() -> None:
    [dockerfile] = code_blocks(DEPLOYMENT, "dockerfile")
    [cmd] = [line for line in dockerfile.splitlines() if line.startswith("CMD ")]
    words = shlex.split(cmd.removeprefix("CMD "))
    assert words[0] == "exec"  # the shell is replaced: SIGTERM reaches beamlet
    env = {"POD_IP": "10.1.2.3", "BEAMLET_DNS": "myapp-nodes.default.svc.cluster.local"}
    argv = [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], w) for w in words[1:]]
    parses(argv)
    assert (
        "EXPOSE 4370" in dockerfile
        and "--port" in argv
        and argv[argv.index("--port") + 1] == "4370"
    )


def test_the_kubernetes_service_is_headless_and_matches_the_discovery() -> None:
    [manifest] = code_blocks(DEPLOYMENT, "yaml")
    service, deployment = manifest.split("\n---\n")
    assert "kind: Service" in service and re.search(r"^  clusterIP: None\b", service, re.M)
    assert re.search(r"^\s+port: 4370$", service, re.M)
    assert "name: myapp-nodes" in service
    assert "value: myapp-nodes.default.svc.cluster.local" in deployment
    assert "fieldPath: status.podIP" in deployment
    [secrets] = [b for b in code_blocks(DEPLOYMENT, "sh") if "kubectl" in b]
    for name in re.findall(r"secretName: (\S+)", deployment):
        assert f"create secret generic {name} " in secrets, name


def test_the_cookie_command_makes_a_cookie_beamlet_accepts(tmp_path: Path) -> None:
    from beamlet.cluster import Cookie

    [secrets] = [b for b in code_blocks(DEPLOYMENT, "sh") if "kubectl" in b]
    [make] = [line for line in secrets.splitlines() if line.startswith("python3 ")]
    subprocess.run(
        ["sh", "-c", make.replace("python3", sys.executable, 1)], cwd=tmp_path, check=True
    )
    Cookie((tmp_path / "cookie").read_bytes().strip())


@pytest.mark.parametrize("block", code_blocks(DEPLOYMENT, "python"))
def test_the_python_examples_run(block: str, tmp_path: Path) -> None:
    run_python(["-c", block], tmp_path)


def test_the_checking_commands_are_valid() -> None:
    [check] = [b for b in code_blocks(DEPLOYMENT, "sh") if b.startswith("beamlet ")]
    for line in check.splitlines():
        parses(shlex.split(line))


# -- getting-started.md ---------------------------------------------------------------------

GETTING_STARTED = DOCS / "getting-started.md"


def test_the_guide_shows_the_example_files_as_they_are() -> None:
    check_guide_shows_examples(
        GETTING_STARTED, EXAMPLES.glob("getting_started_*.py"), only_examples=True
    )


def test_the_first_program_prints_hello(tmp_path: Path) -> None:
    result = run_python([str(EXAMPLES / "getting_started_hello.py")], tmp_path)
    assert result.stdout == "HELLO\n", result.stderr


def test_the_first_command_is_the_readme_s() -> None:
    [install, *_] = code_blocks(GETTING_STARTED, "sh")
    assert install.strip() in (REPO / "README.md").read_text()


def test_two_nodes_talking_as_the_guide_says(tmp_path: Path) -> None:
    """Every line of the walkthrough, run as written (another port than 4370, which may be taken)."""
    import shutil
    import signal
    import socket

    from .conftest import COMMAND, Service

    _install, setup, talk = code_blocks(GETTING_STARTED, "sh")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = str(sock.getsockname()[1])
    sock.close()
    work = tmp_path / "docs" / "examples"
    shutil.copytree(EXAMPLES, work)

    def command(line: str) -> list[str]:
        argv = shlex.split(line.replace("4370", port))
        if argv[0] == "beamlet":
            return [*COMMAND, *argv[1:]]
        if argv[0] == "python3":
            return [sys.executable, *argv[1:]]
        return argv

    cd, make_cookie, serve = setup.strip().splitlines()
    assert cd == "cd docs/examples"
    subprocess.run(
        ["sh", "-c", make_cookie.replace("python3", sys.executable, 1)], cwd=work, check=True
    )
    assert serve.endswith(" &")
    argv = command(serve.removesuffix(" &"))
    assert argv[: len(COMMAND) + 1] == [*COMMAND, "run"]
    service = Service(argv[len(COMMAND) + 1 :], cwd=work)
    try:
        service.wait_for(rf"node greeter@127\.0\.0\.1 listening on 127\.0\.0\.1:{port}")
        client, ping, top, kill = talk.strip().splitlines()
        out = subprocess.run(command(client), cwd=work, capture_output=True, text=True, timeout=60)
        assert out.stdout == "hello client, from greeter@127.0.0.1 (greeting #1)\n", out.stderr
        for line in (ping, top):
            out = subprocess.run(
                command(line), cwd=work, capture_output=True, text=True, timeout=60
            )
            assert out.returncode == 0, out.stderr
        assert (
            "pong greeter@127.0.0.1"
            in subprocess.run(
                command(ping), cwd=work, capture_output=True, text=True, timeout=60
            ).stdout
        )
        assert "Greeter (GenServer)" in out.stdout
        assert kill == "kill %1"
        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(timeout=30) == 0
    finally:
        service.stop()


# -- cli.md ---------------------------------------------------------------------------------


def test_the_command_lines_of_the_cli_guide_are_valid() -> None:
    lines = []
    for block in code_blocks(DOCS / "cli.md", "sh"):
        text = block.replace("\\\n", " ")
        lines += [line.split("  #")[0] for line in text.splitlines() if line.startswith("beamlet ")]
    assert len(lines) >= 6
    for line in lines:
        parses(shlex.split(line))
