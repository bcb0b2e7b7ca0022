"""Many texts on many processes: ``ScanPool`` keeps one scanner per worker process for the
worker's whole life, and ``scan_stream`` scans an iterable of texts in batches, in order, with
memory bounded whatever the input size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Self

from veilflow.detect.scanner import BatchScan, Scanner, scanner_for, scanner_for_json
from veilflow.policy.detection import DetectionSettings

_worker: Scanner | None = None


def _init_worker(settings_json: str) -> None:
    global _worker
    _worker = scanner_for_json(settings_json, True)  # inherited through fork, or built once here


def _scan_in_worker(batch: list[object]) -> BatchScan:
    assert _worker is not None
    return _worker.scan(batch)


def _batches(texts: Iterable[object], size: int) -> Iterator[list[object]]:
    batch: list[object] = []
    for t in texts:
        batch.append(t)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class ScanPool:
    """Worker processes that each hold one engine for their whole life.

    With the ``fork`` start method the engine is built once in the parent and inherited
    (copy-on-write), so workers start in milliseconds; otherwise each worker builds its own
    once at start-up. Never per batch, never per value."""

    def __init__(self, settings: DetectionSettings | None = None, workers: int = 2) -> None:
        import multiprocessing as mp
        from multiprocessing.context import BaseContext

        self.settings = settings or DetectionSettings()
        self.workers = workers
        payload = self.settings.model_dump_json()
        ctx: BaseContext
        if "fork" in mp.get_all_start_methods():
            ctx = mp.get_context("fork")
            scanner_for_json(payload, True)
        else:  # pragma: no cover - not on Linux
            ctx = mp.get_context()
        self._pool = ctx.Pool(workers, initializer=_init_worker, initargs=(payload,))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()

    def scan_stream(self, texts: Iterable[object], batch_size: int = 512) -> Iterator[BatchScan]:
        """Results in input order; at most ``2 × workers`` batches in flight, so memory
        stays bounded whatever the input size."""
        pending: list[Any] = []
        for batch in _batches(texts, batch_size):
            pending.append(self._pool.apply_async(_scan_in_worker, (batch,)))
            if len(pending) >= 2 * self.workers:
                yield pending.pop(0).get()
        for job in pending:
            yield job.get()


def scan_stream(
    texts: Iterable[object],
    settings: DetectionSettings | None = None,
    *,
    workers: int = 1,
    batch_size: int = 512,
) -> Iterator[BatchScan]:
    """Scan an iterable of texts in batches, in order, on ``workers`` processes (see
    ``ScanPool``); memory stays bounded whatever the input size."""
    if workers <= 1:
        scanner = scanner_for(settings)
        for batch in _batches(texts, batch_size):
            yield scanner.scan(batch)
        return
    with ScanPool(settings, workers) as pool:
        yield from pool.scan_stream(texts, batch_size)


__all__ = ["ScanPool", "scan_stream"]
