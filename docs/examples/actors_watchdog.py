"""The watchdog names the process that blocks the event loop."""

import logging
import time

from beamlet.actors import monitor, receive, run, spawn

records = []


class Keep(logging.Handler):
    def emit(self, record):
        records.append(record)


logging.getLogger("beamlet.watchdog").addHandler(Keep())


async def number_cruncher():
    # 0.5 s of computing without an await: nothing else runs meanwhile.
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        pass


async def main():
    pid = spawn(number_cruncher, name="cruncher")
    monitor(pid)
    await receive()


run(main, watchdog_threshold=0.05)
first = records[0]
assert first.beamlet_name == "cruncher"
assert first.beamlet_function == "number_cruncher"
print(first.getMessage().splitlines()[0])
