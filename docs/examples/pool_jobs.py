"""Fire-and-forget jobs: per-queue concurrency, retries with backoff, final failures."""

import trio
from beamlet.actors import run
from beamlet.apps.pool import Jobs, enqueue


class Mailer:
    """Stands for an SMTP server that fails now and then."""

    def __init__(self):
        self.attempts = {}
        self.sent = []

    async def send(self, to, subject):
        self.attempts[to] = self.attempts.get(to, 0) + 1
        await trio.sleep(0.1)  # the SMTP round trip
        if to.endswith("@flaky.example") and self.attempts[to] < 3:
            raise ConnectionError("SMTP server busy")  # retried after a backoff
        if to.endswith("@gone.example"):
            raise LookupError(f"no mailbox {to}")  # fails every attempt
        self.sent.append(to)


async def main():
    mailer = Mailer()
    failures = []
    await Jobs.start_link(
        "jobs",
        queues={"email": 2, "reports": 1},  # at most 2 emails at once, 1 report
        on_failure=failures.append,  # called with each JobFailure
    )
    for to in ("ada@example.com", "bob@flaky.example", "eve@gone.example", "max@example.com"):
        await enqueue("jobs", "email", mailer.send, to, "Welcome!", max_attempts=3, backoff=0.05)
    print((await Jobs.stats("jobs"))["email"])

    await Jobs.drain("jobs")  # wait until nothing runs, waits or waits for a retry
    print("sent:", sorted(mailer.sent))
    print("attempts:", dict(sorted(mailer.attempts.items())))
    [failure] = failures
    print(f"gave up on job {failure.id} after {failure.attempts} attempts: {failure.reason!r}")
    print((await Jobs.stats("jobs"))["email"])


if __name__ == "__main__":
    run(main)
