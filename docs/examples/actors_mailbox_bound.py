"""A mailbox bound: a process that falls behind is killed with "mailbox_overflow"."""

import trio
import trio.lowlevel
from beamlet.actors import (
    Down,
    monitor,
    process_info,
    receive,
    run,
    self_pid,
    send,
    set_max_mailbox,
    spawn,
)


async def slow_consumer():
    while True:
        await receive()
        await trio.sleep(0.1)  # much slower than its producer


async def careful():
    previous = set_max_mailbox(50)  # the process flag, set at run time
    assert previous is None
    await receive(lambda m: m == "never")


async def main():
    pid = spawn(slow_consumer, name="consumer", max_mailbox=100)
    ref = monitor(pid)
    assert process_info(pid).max_mailbox == 100
    for i in range(1000):  # a flood: the 101st waiting message kills it
        send(pid, i)
    down = await receive(lambda m: isinstance(m, Down) and m.ref == ref)
    assert down.reason == "mailbox_overflow"

    other = spawn(careful)
    ref = monitor(other)
    await trio.lowlevel.checkpoint()  # let it set its flag
    for i in range(51):
        send(other, i)
    down = await receive(lambda m: isinstance(m, Down) and m.ref == ref)
    assert down.reason == "mailbox_overflow"
    assert process_info(self_pid()).max_mailbox is None  # no bound by default


run(main)
