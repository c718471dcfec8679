"""The ``redis_server`` fixture: a real server that tests can kill and restart."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from redis_server import RedisServer, RedisServerError, find_redis_server


def ping(host: str, port: int) -> bytes:
    with socket.create_connection((host, port), timeout=2.0) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16)


def command(server: RedisServer, *args: str) -> bytes:
    """One command in RESP, its raw reply."""
    payload = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a)}\r\n{a}\r\n".encode() for a in args
    )
    with socket.create_connection((server.host, server.port), timeout=2.0) as sock:
        sock.sendall(payload)
        return sock.recv(4096)


def test_fixture_serves_on_loopback_with_persistence_off(redis_server: RedisServer) -> None:
    assert redis_server.running
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert ping(redis_server.host, redis_server.port) == b"+PONG\r\n"
    assert b"\r\n\r\n" in command(redis_server, "CONFIG", "GET", "save")  # save ""
    assert b"no" in command(redis_server, "CONFIG", "GET", "appendonly")


def test_kill_then_restart_on_the_same_port_empty(redis_server: RedisServer) -> None:
    port, pid = redis_server.port, redis_server.pid
    assert command(redis_server, "SET", "k", "v") == b"+OK\r\n"
    redis_server.kill()
    assert not redis_server.running
    with pytest.raises(OSError):
        ping(redis_server.host, redis_server.port)
    redis_server.restart()
    assert redis_server.port == port and redis_server.pid != pid
    assert redis_server.starts == 2
    assert command(redis_server, "GET", "k") == b"$-1\r\n"  # nothing persisted


async def test_restart_async_keeps_the_loop_running(redis_server: RedisServer) -> None:
    redis_server.kill()
    await redis_server.restart_async()
    assert ping(redis_server.host, redis_server.port) == b"+PONG\r\n"


def test_a_missing_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEAMLET_REDIS_SERVER", "/nonexistent/redis-server")
    with pytest.raises(RedisServerError, match="install it") as info:
        find_redis_server()
    assert "BEAMLET_REDIS_SERVER='/nonexistent/redis-server'" in str(info.value)


def test_the_fixture_fails_rather_than_skips_without_redis(tmp_path) -> None:  # type: ignore[no-untyped-def]
    test_file = tmp_path / "test_needs_redis.py"
    test_file.write_text("def test_it(redis_server):\n    pass\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(test_file),
            "--rootdir",
            str(tmp_path),
            "-c",
            "/dev/null",
            "--confcutdir",
            str(tmp_path),
            "-p",
            "conftest",
        ],
        capture_output=True,
        text=True,
        env={
            "BEAMLET_REDIS_SERVER": "/nonexistent/redis-server",
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(__import__("pathlib").Path(__file__).parent),
        },
        timeout=50,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 error" in done.stdout and "skipped" not in done.stdout, done.stdout
    assert "install it" in done.stdout, done.stdout
