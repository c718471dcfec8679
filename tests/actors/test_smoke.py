from beamlet.actors import receive, run, self_pid, send


def test_run_returns_the_result_of_main() -> None:
    async def main() -> int:
        send(self_pid(), 41)
        return await receive() + 1

    assert run(main) == 42
