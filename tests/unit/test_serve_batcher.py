"""The scrub API's batcher: requests waiting together are scanned together; clients that take
turns are gathered into one batch; a lone client never waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from veilflow.serve.batcher import Batcher, Job

JOB: Job = ("scrub", "customers", "note")


def _runner(sizes: list[int], seconds: float) -> Callable[[Job, list[str]], list[str]]:
    def run(job: Job, texts: list[str]) -> list[str]:
        sizes.append(len(texts))
        time.sleep(seconds)
        return [t.upper() for t in texts]

    return run


def test_each_request_gets_its_own_answers() -> None:
    async def main() -> list[list[str]]:
        batcher = Batcher(_runner([], 0.01))
        batcher.start()
        try:
            return await asyncio.gather(
                *(batcher.submit(JOB, [f"a{i}", f"b{i}"]) for i in range(5))
            )
        finally:
            await batcher.stop()

    assert asyncio.run(main()) == [[f"A{i}", f"B{i}"] for i in range(5)]


def _closed_loop(linger: float) -> list[int]:
    """Eight clients, each sending again as soon as it has its answer, for 30 batches."""
    sizes: list[int] = []

    async def main() -> None:
        batcher = Batcher(_runner(sizes, 0.02), linger=linger)
        batcher.start()

        async def client(k: int) -> None:
            while len(sizes) < 30:
                await batcher.submit(JOB, [str(k)])
                await asyncio.sleep(0.002)  # the client's own turn-around

        async def late_half() -> None:
            await asyncio.sleep(0.01)  # half the clients start while the first batch runs
            await asyncio.gather(*(client(k) for k in range(4, 8)))

        try:
            await asyncio.gather(*(client(k) for k in range(4)), late_half())
        finally:
            await batcher.stop()

    asyncio.run(main())
    return sizes


def test_clients_that_take_turns_are_gathered_into_one_batch() -> None:
    turns = _closed_loop(linger=0.0)
    gathered = _closed_loop(linger=0.05)
    # Without lingering the two halves take turns (batches of 4); with it, they merge.
    assert max(turns[5:]) <= 4, turns
    assert sum(gathered[5:]) / len(gathered[5:]) >= 7, gathered


def test_a_lone_client_never_waits_for_the_linger() -> None:
    async def main() -> float:
        batcher = Batcher(_runner([], 0.0), linger=1.0)
        batcher.start()
        try:
            t = time.perf_counter()
            for i in range(5):
                assert await batcher.submit(JOB, [str(i)]) == [str(i)]
            return time.perf_counter() - t
        finally:
            await batcher.stop()

    assert asyncio.run(main()) < 1.0
