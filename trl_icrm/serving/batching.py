# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""[`BatchScorer`]: dynamic batching of concurrent requests onto one scoring worker.

Requests (each a list of items) wait in a bounded queue. One worker task takes the oldest request, waits at most
`max_wait_ms` from its arrival for others, and scores up to `max_batch_size` items of as many whole requests as fit
in one call of the scoring function, run on a single worker thread: the reward model is never used by two threads,
and requests that share a demonstration set share its encoded prefix (the reward model groups a merged batch by
prefix). The event loop stays free to accept and parse other requests meanwhile.

- A full queue rejects a request at once ([`QueueFullError`], answered 503) instead of letting latency grow unbounded.
- A request whose caller went away (its future cancelled) is dropped before scoring, and never breaks the batch of
  others.
- If a merged batch fails, each of its requests is scored alone, so only the request at fault gets the error.
- [`BatchScorer.close`] stops taking requests ([`ShuttingDownError`], 503) and finishes every queued one;
  [`BatchScorer.drain`] does so within a grace period, then answers what it has not finished with
  [`ShuttingDownError`] and no longer waits for the batch being scored (its thread is a daemon: the process may exit).

Example:

```python
import asyncio
from trl_icrm.serving.batching import BatchScorer

async def main():
    scorer = BatchScorer(lambda items: [len(item) for item in items], max_batch_size=8, max_wait_ms=2)
    await scorer.start()
    results = await asyncio.gather(scorer.submit(["a", "bb"]), scorer.submit(["ccc"]))
    await scorer.close()
    return results, scorer.stats()["batches"]

asyncio.run(main())  # ([[1, 2], [3]], 1)
```
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from typing import Any


logger = logging.getLogger(__name__)


class QueueFullError(RuntimeError):
    """The queue of waiting requests is full; the client should retry later (HTTP 503)."""


class ShuttingDownError(RuntimeError):
    """The server is shutting down and takes no new requests (HTTP 503)."""


@dataclass
class BatchStats:
    """Counters of a [`BatchScorer`] since it started."""

    requests: int = 0  # accepted into the queue
    items: int = 0  # items of accepted requests
    completed: int = 0  # requests answered with results
    failed: int = 0  # requests answered with an error by the scoring function
    cancelled: int = 0  # requests whose caller went away before they were scored
    rejected: int = 0  # requests refused because the queue was full or the scorer was closing
    batches: int = 0  # calls of the scoring function on merged batches
    batched_requests: int = 0  # requests scored in those calls
    batched_items: int = 0
    max_batch_requests: int = 0
    max_batch_items: int = 0
    retried_alone: int = 0  # requests scored again alone after their merged batch failed
    scoring_seconds: float = 0.0


class _ScoringThread:
    """One daemon thread that runs the scoring calls, one at a time, in order. A daemon, so that a process that shuts
    down does not wait for a batch nobody will read (a `ThreadPoolExecutor` thread is joined at exit)."""

    def __init__(self, name: str = "reward-scorer"):
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable, *args: Any) -> Future:
        future: Future = Future()
        self._calls.put((future, fn, args))
        return future

    def _loop(self) -> None:
        while (call := self._calls.get()) is not None:
            future, fn, args = call
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as error:  # noqa: BLE001 - handed to the awaiting coroutine
                future.set_exception(error)

    def shutdown(self, wait: bool = True) -> None:
        self._calls.put(None)
        if wait:
            self._thread.join()


@dataclass
class _Job:
    items: Sequence[Any]
    future: asyncio.Future
    enqueued_at: float


class BatchScorer:
    """Batches concurrent `submit(items)` calls into calls of `score_fn(items) -> results` on one worker thread.

    Args:
        score_fn: Scores a list of items, returns one result per item (in order); runs on the worker thread only.
        max_batch_size: Most items per call (a request with more is scored alone, never split).
        max_wait_ms: How long the oldest waiting request waits for others before its batch is scored.
        max_queue: Most requests waiting to be scored; beyond it `submit` raises [`QueueFullError`].
    """

    def __init__(
        self,
        score_fn: Callable[[list[Any]], Sequence[Any]],
        *,
        max_batch_size: int = 64,
        max_wait_ms: float = 5.0,
        max_queue: int = 256,
    ):
        if max_batch_size < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch_size and max_queue must be >= 1 and max_wait_ms >= 0.")
        self.score_fn = score_fn
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self._queue: collections.deque[_Job] = collections.deque()
        self._queued_items = 0
        self._in_flight = 0  # requests in the batch being scored
        self._stats = BatchStats()
        self._closing = False
        self._abandoned = False  # the grace period of a drain ran out
        self._batch: list[_Job] = []  # the batch being scored
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: _ScoringThread | None = None
        self._started_at = time.monotonic()

    # Life cycle
    async def start(self) -> None:
        """Start the worker (on the running event loop)."""
        if self._task is not None:
            return
        self._wakeup = asyncio.Event()
        self._executor = _ScoringThread()
        self._closing = self._abandoned = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="reward-batcher")

    async def close(self) -> None:
        """Take no new requests, score every queued one (unless a [`drain`] gave up on them), then stop the worker
        and its thread."""
        self._closing = True
        if self._task is None:
            return
        self._wakeup.set()
        try:
            if self._abandoned:
                self._task.cancel()
            await self._task
        except asyncio.CancelledError:
            if not self._abandoned:
                raise
        finally:
            self._task = None
            self._executor.shutdown(wait=not self._abandoned)

    def drain(self, grace_s: float) -> None:
        """Shut down within `grace_s` seconds: take no new requests now, and once the grace period is (nearly) over
        answer every request not finished with [`ShuttingDownError`] (503, retry elsewhere or later) and stop waiting
        for the batch being scored. Call it on the event loop when the server starts shutting down."""
        self._closing = True
        if self._task is None:
            return
        self._wakeup.set()
        margin = min(0.25, grace_s / 4)  # answered before the server's own grace period cancels the handlers
        asyncio.get_running_loop().call_later(max(grace_s - margin, 0.0), self._abandon)

    def _abandon(self) -> None:
        if not self._queue and not self._batch:
            return
        self._abandoned = True
        error = ShuttingDownError("The reward server shut down before this request was scored; retry.")
        unfinished = [*self._batch, *self._queue]
        self._queue.clear()
        self._queued_items = 0
        for job in unfinished:
            if job.future.done():  # its caller went away
                self._stats.cancelled += 1
            else:
                self._fail(job, error)
        if self._task is not None:
            self._task.cancel()

    @property
    def closing(self) -> bool:
        return self._closing

    # Requests
    async def submit(self, items: Sequence[Any]) -> list[Any]:
        """Score `items` (one request) with others that arrive meanwhile; returns one result per item."""
        if self._closing or self._task is None:
            self._stats.rejected += 1
            raise ShuttingDownError("The reward server is shutting down.")
        if len(self._queue) >= self.max_queue:
            self._stats.rejected += 1
            raise QueueFullError(f"{len(self._queue)} requests are waiting (--max_queue {self.max_queue}).")
        loop = asyncio.get_running_loop()
        job = _Job(list(items), loop.create_future(), loop.time())
        self._queue.append(job)
        self._queued_items += len(job.items)
        self._stats.requests += 1
        self._stats.items += len(job.items)
        self._wakeup.set()
        return await job.future  # a cancelled caller cancels the future: the worker then skips the job

    def stats(self) -> dict[str, Any]:
        """The counters, the queue and the batching settings."""
        stats = asdict(self._stats)
        batches = max(self._stats.batches, 1)
        stats.update(
            queued_requests=len(self._queue),
            queued_items=self._queued_items,
            in_flight_requests=self._in_flight,
            mean_batch_requests=self._stats.batched_requests / batches,
            mean_batch_items=self._stats.batched_items / batches,
            uptime_seconds=time.monotonic() - self._started_at,
        )
        return stats

    # Worker
    async def _run(self) -> None:
        while True:
            while not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            await self._wait_for_company()
            batch = self._take_batch()
            if batch:
                await self._score(batch)

    async def _wait_for_company(self) -> None:
        """Wait until the batch is full or the oldest request has waited `max_wait` (not while closing)."""
        loop = asyncio.get_running_loop()
        deadline = self._queue[0].enqueued_at + self.max_wait
        while self._queued_items < self.max_batch_size and not self._closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def _take_batch(self) -> list[_Job]:
        """Whole requests from the front of the queue, up to `max_batch_size` items (at least one request)."""
        batch: list[_Job] = []
        size = 0
        while self._queue:
            job = self._queue[0]
            if job.future.done():  # the caller went away
                self._queue.popleft()
                self._queued_items -= len(job.items)
                self._stats.cancelled += 1
                continue
            if batch and size + len(job.items) > self.max_batch_size:
                break
            self._queue.popleft()
            self._queued_items -= len(job.items)
            batch.append(job)
            size += len(job.items)
        return batch

    async def _call(self, items: list[Any]) -> list[Any]:
        start = time.perf_counter()
        try:
            results = await asyncio.wrap_future(self._executor.submit(self.score_fn, items))
        finally:
            self._stats.scoring_seconds += time.perf_counter() - start
        results = list(results)
        if len(results) != len(items):
            raise RuntimeError(f"The scoring function returned {len(results)} results for {len(items)} items.")
        return results

    async def _score(self, batch: list[_Job]) -> None:
        items = [item for job in batch for item in job.items]
        self._batch, self._in_flight = batch, len(batch)
        self._stats.batches += 1
        self._stats.batched_requests += len(batch)
        self._stats.batched_items += len(items)
        self._stats.max_batch_requests = max(self._stats.max_batch_requests, len(batch))
        self._stats.max_batch_items = max(self._stats.max_batch_items, len(items))
        try:
            results = await self._call(items)
        except Exception as error:
            if len(batch) == 1:
                self._fail(batch[0], error)
            else:  # find the request at fault: score each alone
                logger.info("A merged batch of %d requests failed (%s); scoring them one by one.", len(batch), error)
                for job in batch:
                    await self._score_alone(job)
        else:
            start = 0
            for job in batch:
                self._finish(job, results[start : start + len(job.items)])
                start += len(job.items)
        finally:
            self._batch, self._in_flight = [], 0

    async def _score_alone(self, job: _Job) -> None:
        if job.future.done():
            self._stats.cancelled += 1
            return
        self._stats.retried_alone += 1
        try:
            results = await self._call(list(job.items))
        except Exception as error:
            self._fail(job, error)
        else:
            self._finish(job, results)

    def _finish(self, job: _Job, results: list[Any]) -> None:
        if job.future.done():
            self._stats.cancelled += 1
            return
        job.future.set_result(results)
        self._stats.completed += 1

    def _fail(self, job: _Job, error: BaseException) -> None:
        self._stats.failed += 1
        if job.future.done():
            return
        job.future.set_exception(error)


__all__ = ["BatchScorer", "BatchStats", "QueueFullError", "ShuttingDownError"]
