"""A real ``redis-server`` for the tests: started on a free port, killed and restarted at will.

``tests/conftest.py`` imports this module and offers it as the ``redis_server``
fixture to every test folder::

    async def test_my_cache(redis_server):
        url = redis_server.url            # "redis://127.0.0.1:PORT/0"
        ...
        redis_server.kill()               # SIGKILL: Redis is down mid-run
        ...
        await redis_server.restart_async()  # the same port again, empty

The server runs in a temporary directory with persistence off (no RDB
snapshots, no AOF), bound to 127.0.0.1, so it starts empty each time and
leaves nothing behind. Waiting for it to accept connections is bounded (a few
seconds of real time: a real server forces real time).

A missing ``redis-server`` is an error, never a skip: the fixture fails the
test and says how to install it (``.ci/run`` installs it with apt-get).
Set ``BEAMLET_REDIS_SERVER`` to use another binary.

Only the standard library is used here, so that other helpers (a child OS
process of a test, say) can use it too.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["RedisServer", "RedisServerError", "find_redis_server"]

#: Where Debian's package puts the binary; PATH is searched after it.
DEFAULT_BINARY = "/usr/bin/redis-server"
#: Seconds of real time for a server to accept connections after it is started.
START_TIMEOUT = 10.0
#: Attempts at a free port, in case another program takes it between our check and the bind.
PORT_ATTEMPTS = 5


class RedisServerError(RuntimeError):
    """redis-server is missing, or it did not start."""


def find_redis_server() -> str:
    """The path of the ``redis-server`` binary to run.

    ``BEAMLET_REDIS_SERVER`` if set, else ``/usr/bin/redis-server``, else
    ``redis-server`` on PATH.

    Raises:
        RedisServerError: no such binary; the message says how to install it.
    """
    configured = os.environ.get("BEAMLET_REDIS_SERVER")
    candidates = [configured] if configured else [DEFAULT_BINARY, "redis-server"]
    for candidate in candidates:
        found = shutil.which(candidate)
        if found is not None:
            return found
    where = (
        f"BEAMLET_REDIS_SERVER={configured!r} is not an executable"
        if configured
        else f"neither {DEFAULT_BINARY} nor redis-server on PATH exists"
    )
    raise RedisServerError(
        f"the Redis tests need a real redis-server, and {where}: install it "
        "(apt-get install redis-server; .ci/run does) or set BEAMLET_REDIS_SERVER"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` child process on a fixed port, in its own temporary directory.

    Args:
        binary: the ``redis-server`` to run (default: ``find_redis_server()``).
        port: the port (default: a free one, chosen at the first ``start``
            and kept for every restart).
        host: the address to bind (loopback by default).
    """

    def __init__(
        self, binary: str | None = None, *, port: int | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.binary = binary if binary is not None else find_redis_server()
        self.host = host
        self.port = port
        self._chosen_port = port is None
        self._tmp = tempfile.TemporaryDirectory(prefix="beamlet-redis-")
        self.dir = Path(self._tmp.name)
        self.log_path = self.dir / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None
        #: How many times the server was started (1 after the first start).
        self.starts = 0

    @property
    def url(self) -> str:
        """``redis://HOST:PORT/0``."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def address(self) -> str:
        """``HOST:PORT``."""
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The OS pid of the running server (None when it is not running)."""
        return self._process.pid if self.running and self._process is not None else None

    def start(self) -> None:
        """Start the server and return once it accepts connections.

        The first start picks a free port (retrying if another program takes
        it first); later starts reuse it.

        Raises:
            RedisServerError: it did not accept connections within
                ``START_TIMEOUT`` seconds, or exited; the message quotes its log.
        """
        if self.running:
            raise RedisServerError(f"redis-server on {self.address} is already running")
        first = self.starts == 0 and self._chosen_port
        attempts = PORT_ATTEMPTS if first else 1
        for attempt in range(attempts):
            if first:
                self.port = free_port(self.host)
            try:
                self._spawn_and_wait()
            except RedisServerError:
                if attempt + 1 == attempts:
                    raise
                continue
            self.starts += 1
            return

    def _spawn_and_wait(self) -> None:
        assert self.port is not None
        log = self.log_path.open("ab")
        try:
            self._process = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    self.host,
                    "--dir",
                    str(self.dir),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._process.poll() is not None:
                self._process = None
                raise RedisServerError(
                    f"redis-server on {self.address} exited at start: {self._log_tail()}"
                )
            if self._accepts():
                return
            if time.monotonic() > deadline:
                self._kill_process()
                raise RedisServerError(
                    f"redis-server on {self.address} did not accept connections within "
                    f"{START_TIMEOUT} s: {self._log_tail()}"
                )
            time.sleep(0.005)

    def _accepts(self) -> bool:
        """True once the server answers PING with PONG."""
        assert self.port is not None
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-800:].strip() or "(empty log)"
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL the server and wait for it to be gone (its port closes with it).

        Redis is down from the clients' point of view at once: open
        connections are reset and new ones refused. A no-op if not running.
        """
        self._kill_process()

    def _kill_process(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=START_TIMEOUT)

    def restart(self) -> None:
        """Kill the server if it runs, then start it again on the same port (empty).

        Blocks for as long as the start takes (milliseconds); inside a Trio
        test prefer ``await restart_async()``, which waits in a thread.
        """
        self._kill_process()
        self.start()

    async def restart_async(self) -> None:
        """``restart()`` in a worker thread, so that the Trio loop keeps running meanwhile."""
        import trio

        await trio.to_thread.run_sync(self.restart)

    def stop(self) -> None:
        """Kill the server and remove its directory. The object cannot be started again."""
        self._kill_process()
        self._tmp.cleanup()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisServer {self.address} {state}>"
