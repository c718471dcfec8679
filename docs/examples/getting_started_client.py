"""Talk to the greeter from a second node: `python3 getting_started_client.py 127.0.0.1:4370`."""

import sys
from pathlib import Path

from beamlet.actors import call
from beamlet.cluster import connect, run

address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:4370"
cookie = Path("cookie.txt").read_text().strip()


async def main() -> str:
    if not await connect(address):  # the first message would connect too, by name
        raise SystemExit(f"cannot reach {address}")
    return await call(("greeter", "greeter@127.0.0.1"), "client")


print(run(main, name="client@127.0.0.1", cookie=cookie))
