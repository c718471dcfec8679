"""``beamlet run``: a supervision tree as a service, in a real OS process."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from beamlet.actors import call
from beamlet.cluster import connect, run

from .conftest import COOKIE, Service


def _greet(address: str) -> str:
    async def main() -> str:
        assert await connect(address)
        answer: str = await call(("greeter", "svc@127.0.0.1"), "client")
        return answer

    return run(main, name="client@127.0.0.1", cookie=COOKIE, watchdog_threshold=None)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_service_serves_other_nodes_and_stops_cleanly_on_a_signal(
    service: tuple[Service, str], signum: int
) -> None:
    svc, address = service
    assert _greet(address) == "hello client"
    svc.process.send_signal(signum)
    assert svc.process.wait(timeout=20) == 0
    assert svc.process.stdout is not None
    assert svc.process.stdout.read() == "terminate greeter shutdown\n"
    rest = svc.rest()
    assert any("received SIG" in line and "shutting down" in line for line in rest), rest
    assert any("application stopped" in line for line in rest), rest
    # Log lines a service manager collects: one record a line, a level on each.
    assert all(" INFO " in line or " WARNING " in line for line in svc.seen + rest)


def test_children_from_a_function_and_seeds(cookie_file: Path) -> None:
    first = Service(
        ["cli_app:children", "--name", "one@127.0.0.1", "--cookie-file", str(cookie_file)]
    )
    second = None
    try:
        address = first.wait_for(r"listening on (\S+)").group(1)
        second = Service(
            [
                "cli_app:make_children",
                "--name",
                "two@127.0.0.1",
                "--cookie-file",
                str(cookie_file),
                "--seeds",
                address,
            ]
        )
        second.wait_for(r"listening on")
        first.wait_for(r"node two@127.0.0.1 up")
        second.process.send_signal(signal.SIGTERM)
        assert second.process.wait(timeout=20) == 0
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_a_tree_that_fails_to_start_exits_1(cookie_file: Path) -> None:
    svc = Service(["cli_app:broken", "--name", "bad@127.0.0.1", "--cookie-file", str(cookie_file)])
    try:
        assert svc.process.wait(timeout=20) == 1
        rest = svc.rest()
        assert any("application failed to start" in line for line in rest), rest
    finally:
        svc.stop()


def test_discovery_by_dns_finds_the_other_node(cookie_file: Path) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    first = Service(
        ["cli_app:children", "--name", "dns1@127.0.0.1", "--cookie-file", str(cookie_file),
         "--port", str(port)]
    )  # fmt: skip
    second = None
    try:
        first.wait_for(r"listening on")
        second = Service(
            ["cli_app:children", "--name", "dns2@127.0.0.1", "--cookie-file", str(cookie_file),
             "--discovery-dns", f"localhost:{port}"]
        )  # fmt: skip
        second.wait_for(r"node dns1@127.0.0.1 up")
    finally:
        first.stop()
        if second is not None:
            second.stop()
