# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Asynchronous clients of the reward server (`trl-icrm serve`), standard library only.

- [`ScoreBatcher`]: gathers the single-sample calls that coroutines of one event loop make within a few milliseconds
  into a few `/score` requests (the samples of one prompt and demonstrations on one replica), sent through the shared
  [`~trl_icrm.serving.clients.RewardClient`] (its timeouts, retries with backoff and fail-over) in worker threads.
- [`compute_score`]: verl's asynchronous custom reward function (`reward.custom_reward_function.path=
  pkg://trl_icrm.serving.async_clients`, `name=compute_score`). verl's reward loop calls it once per sample, all the
  samples of a batch at once; the batcher turns those calls into a few requests.

Why threads and not aiohttp: the retries, back-off, fail-over and replica hashing live once, in the standard-library
`RewardClient` (OpenRLHF loads it by path, without the package's dependencies); with micro-batching a training step
makes a handful of requests, so a thread per request in flight costs nothing next to the scoring, and the verl
worker needs no extra package.

Example:

```python
import asyncio
from trl_icrm.serving.async_clients import compute_score

async def main():
    extra = {"prompt": "2+2?", "demonstrations": [{"prompt": "1+1?", "chosen": "2", "rejected": "3"}]}
    calls = [compute_score("math", answer, None, extra, url="http://127.0.0.1:8000") for answer in ("4", "5")]
    return await asyncio.gather(*calls)  # one /score request for both

asyncio.run(main())  # [{"score": ..., "reward_mean": ..., "reward_score": ..., "reward_variance": ...}, ...]
```
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from .clients import RewardClient, RewardServerError, get_client, verl_answer, verl_item, verl_item_options


class ScoreBatcher:
    """Micro-batcher of `/score` items for the coroutines of one event loop.

    A call waits at most `window_ms` for others (or until `max_items` are waiting); the gathered items are sent as one
    request per replica (at most `max_items` each, [`RewardClient.shard`]), concurrently. A request the server
    refuses as wrong (4xx) is re-sent item by item, so that only the faulty sample gets the error.

    Args:
        client: The shared client (URLs, timeout, retries, back-off).
        window_ms: How long the first waiting call waits for more.
        max_items: Items per request (at most the server's `--max_items_per_request`).
    """

    def __init__(self, client: RewardClient, window_ms: float = 5.0, max_items: int = 256):
        self.client = client
        self.window_s = max(0.0, window_ms) / 1000
        self.max_items = max(1, max_items)
        self._waiting: list[tuple[Mapping[str, Any], asyncio.Future]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Future] = set()
        self.requests = 0

    async def score(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """The `/score` result of one item, sent with the other items that arrive within the window."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((item, future))
        if len(self._waiting) >= self.max_items:
            self.flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.window_s, self.flush)
        return await future

    def flush(self) -> None:
        """Send the waiting items now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self._waiting = self._waiting, []
        for shard in self.client.shard([item for item, _ in waiting], self.max_items):
            task = asyncio.ensure_future(self._send([waiting[i][0] for i in shard], [waiting[i][1] for i in shard]))
            self._tasks.add(task)  # a reference until it ends (the loop keeps only weak ones)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, items: list[Mapping[str, Any]], futures: list[asyncio.Future]) -> None:
        try:
            self.requests += 1
            results = await asyncio.to_thread(self.client.score, items)
        except RewardServerError as error:
            if error.status is not None and 400 <= error.status < 500 and len(items) > 1:
                await asyncio.gather(
                    *(self._send([item], [future]) for item, future in zip(items, futures, strict=True))
                )
                return
            _settle(futures, error=error)
        except Exception as error:  # anything else reaches every waiting caller rather than leaving it hanging
            _settle(futures, error=error)
        else:
            _settle(futures, results=results)


def _settle(futures: list[asyncio.Future], results: Sequence[Any] | None = None, error: BaseException | None = None):
    for i, future in enumerate(futures):
        if future.done():  # the caller was cancelled
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(results[i])


_BATCHERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def get_batcher(
    urls: str | Sequence[str] | None = None, window_ms: float = 5.0, max_items: int = 256, **client_kwargs: Any
) -> ScoreBatcher:
    """The [`ScoreBatcher`] of the running event loop for these URLs and settings (one per loop: asyncio futures
    belong to their loop), around the process-wide shared [`RewardClient`]."""
    loop = asyncio.get_running_loop()
    client = get_client(urls, **client_kwargs)
    per_loop = _BATCHERS.setdefault(loop, {})
    key = (id(client), window_ms, max_items)
    if key not in per_loop:
        per_loop[key] = ScoreBatcher(client, window_ms, max_items)
    return per_loop[key]


async def compute_score(
    data_source: Any = None,
    solution_str: str = "",
    ground_truth: Any = None,
    extra_info: Mapping[str, Any] | None = None,
    url: str | Sequence[str] | None = None,
    timeout: float = 180.0,
    retries: int = 5,
    window_ms: float = 5.0,
    max_items: int = 256,
    **kwargs: Any,
) -> dict[str, Any]:
    """verl's asynchronous custom reward function: the reward of one response from the reward server, batched with
    the concurrent calls of the same event loop.

    The sample is read as by the synchronous `trl_icrm.serving.clients.compute_score` (prompt and demonstrations, or
    a bank key, from `extra_info`; see `verl_item`, whose options `prompt_key`, `demonstrations_key`, `bank_key_key`
    and `label_from_ground_truth` are taken from the keyword arguments). Other keyword arguments verl passes
    (`reward_router_address`, `reward_model_tokenizer`) are ignored: the server URL(s) come from `url` or
    `TRL_ICRM_REWARD_URL`.

    Returns `{"score": reward, "reward_mean": ..., "reward_score": 0-1 score, "reward_variance": ...}`. Raises
    `RewardServerError` when the server refuses the sample (4xx) or stays unreachable after `retries` attempts of at
    most `timeout` seconds each.
    """
    item = verl_item(solution_str, ground_truth, extra_info, **verl_item_options(kwargs))
    batcher = get_batcher(url, window_ms, max_items, timeout=timeout, retries=retries)
    return verl_answer(await batcher.score(item))


__all__ = ["ScoreBatcher", "compute_score", "get_batcher"]
