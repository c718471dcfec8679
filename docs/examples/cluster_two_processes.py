"""Two nodes in two OS processes: a counter service, and a client that calls it.

In two terminals (the cookie may also come from the cookie file, ~/.beamlet/cookie)::

    $ BEAMLET_COOKIE=example-cookie-change-me-0123456789 python cluster_two_processes.py serve
    counter@127.0.0.1 listens on 127.0.0.1:4370
    $ BEAMLET_COOKIE=example-cookie-change-me-0123456789 python cluster_two_processes.py ask 127.0.0.1:4370
    client@127.0.0.1 got (1, 'hello') from counter@127.0.0.1

Run without arguments, it does both itself (as the tests do): it starts the
service as a child process on a free port, runs the client as another, then
stops the service with SIGTERM, which shuts its tree down and exits 0.
"""

import os
import signal
import subprocess
import sys
from functools import partial

from beamlet.actors import GenServer, call
from beamlet.cluster import connect, listen_address, node_name, open_node, run
from beamlet.supervisors import run_application

SERVICE = "counter@127.0.0.1"


class Counter(GenServer):
    async def init(self) -> None:
        self.count = 0
        print(f"{node_name()} listens on {listen_address()}", flush=True)

    async def handle_call(self, request: object, caller: object) -> tuple[int, object]:
        self.count += 1
        return (self.count, request)


def serve(port: int) -> int:
    """The service: a tree on a distributed node, until SIGTERM or Ctrl-C."""
    children = [Counter.child_spec(name="counter")]
    return run_application(children, node=partial(open_node, SERVICE, port=port))


async def ask(address: str) -> None:
    """The client: connect to the service's address, then call it by name."""
    await connect(address, raise_on_error=True)  # ConnectError says why not
    answer = await call(("counter", SERVICE), "hello")
    print(f"{node_name()} got {answer!r} from {SERVICE}", flush=True)


def both() -> None:
    env = {**os.environ, "BEAMLET_COOKIE": "example-cookie-change-me-0123456789"}
    me = [sys.executable, __file__]
    service = subprocess.Popen([*me, "serve", "0"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert service.stdout is not None
        ready = service.stdout.readline()  # "counter@127.0.0.1 listens on 127.0.0.1:PORT"
        print(ready, end="")
        address = ready.split()[-1]
        subprocess.run([*me, "ask", address], env=env, check=True, timeout=30)
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=30) == 0  # a clean shutdown
    finally:
        service.kill()


if __name__ == "__main__":
    command = sys.argv[1:2]
    if command == ["serve"]:
        sys.exit(serve(int(sys.argv[2]) if len(sys.argv) > 2 else 4370))
    elif command == ["ask"]:
        run(ask, sys.argv[2], name="client@127.0.0.1")
    else:
        both()
