# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""[`RemoteReward`]: a TRL reward function that scores on a reward server (`trl-icrm serve`) elsewhere, so that the
policy and the reward model need not share a device or a node.

It is asynchronous: `GRPOTrainer` and `RLOOTrainer` run it on their event loop, alongside any other asynchronous
reward function, while the HTTP requests wait in worker threads. Each call sends the batch's prompts, completions and
per-sample demonstrations (a dataset column, bank keys, or a fixed set) to the server's `/score` endpoint and returns
the server's penalized reward for each completion (`penalized_reward`: the reward under the server's `--penalty`, the
point reward without one; `None` where the server has none, e.g. a non-finite one: TRL reads it as NaN).

Example:

```python
from trl import GRPOConfig, GRPOTrainer
from trl_icrm.serving import RemoteReward

# trl-icrm serve --reward_model_name_or_path outputs/math-icrm --port 8000 --penalty lcb   (on another GPU or node)
reward = RemoteReward("http://10.0.0.2:8000,http://10.0.0.3:8000", demonstrations_column="demonstrations")
trainer = GRPOTrainer(model=policy, reward_funcs=[reward], args=GRPOConfig(...), train_dataset=data)
```
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..rewards.base import check_batch, columns_only
from .clients import RewardClient, RewardServerError, _plain, penalized_reward


class RemoteReward:
    """A TRL reward function (asynchronous) answered by one or several reward servers.

    The demonstrations of each completion come from exactly one source, as for `ICRMReward`: a bank key from the
    dataset column `bank_key_column` (the server draws from its `--demonstration_bank`, as `ICRMReward`'s bank mode
    does), a fixed set `fixed_demonstrations`, or else the per-row lists of pairs of `demonstrations_column` (a
    completion whose row has none is sent without; the server answers 422 for an ICRM model unless it runs with
    `--allow_zero_shot`, and a model that reads no demonstrations ignores them).

    Requests: the completions of one prompt and demonstrations go to the same replica (a hash picks it; they are
    batched together there and share the encoding of their demonstrations); the requests to different replicas are
    sent concurrently. A request is retried on connection errors, timeouts and 429/502/503/504 on the next replicas,
    `retries` attempts in all with a back-off doubling from `backoff` seconds; a request the server refuses (another
    4xx) or one that fails every attempt raises `RewardServerError`, so a call waits at most about
    `retries * timeout` seconds plus the back-off.

    Args:
        url: Server URL(s): `"http://127.0.0.1:8000"`, a comma-separated list, or a list (default:
            `TRL_ICRM_REWARD_URL`).
        demonstrations_column: Dataset column of per-row demonstrations (lists of `{prompt, chosen, rejected}`).
        bank_key_column: Dataset column of keys into the server's demonstration bank.
        fixed_demonstrations: Demonstrations sent with every completion.
        timeout: Seconds to wait for one answer.
        retries: Attempts per request.
        backoff: Seconds of the first pause between attempts.
        max_items_per_request: Completions per request (at most the server's `--max_items_per_request`).
        name: The name TRL logs the reward under (`rewards/<name>/mean`).
    """

    def __init__(
        self,
        url: str | Sequence[str] | None = None,
        *,
        demonstrations_column: str | None = "demonstrations",
        bank_key_column: str | None = None,
        fixed_demonstrations: Sequence[Mapping[str, Any]] | None = None,
        timeout: float = 120.0,
        retries: int = 5,
        backoff: float = 0.5,
        max_items_per_request: int = 256,
        name: str = "remote_reward",
    ):
        if bank_key_column is not None and fixed_demonstrations is not None:
            raise ValueError("Give either bank_key_column or fixed_demonstrations, not both.")
        if max_items_per_request < 1:
            raise ValueError(f"max_items_per_request must be >= 1, got {max_items_per_request}.")
        self.client = RewardClient(url, timeout=timeout, retries=retries, backoff=backoff)
        self.demonstrations_column = demonstrations_column
        self.bank_key_column = bank_key_column
        self.fixed = _plain(list(fixed_demonstrations)) if fixed_demonstrations is not None else None
        self.max_items_per_request = max_items_per_request
        self.__name__ = name

    def items(self, prompts: Sequence[Any], completions: Sequence[Any], columns: Mapping[str, Any]) -> list[dict]:
        """The `/score` items of a batch: prompt, completion and the demonstrations (or bank key) of each."""
        if self.bank_key_column is not None and self.bank_key_column not in columns:
            raise ValueError(f"{self.__name__}: the dataset has no column {self.bank_key_column!r} of bank keys.")
        demonstrations = columns.get(self.demonstrations_column) if self.demonstrations_column else None
        items = []
        for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
            item = {"prompt": _plain(prompt), "completion": _plain(completion)}
            if self.fixed is not None:
                item["demonstrations"] = self.fixed
            elif self.bank_key_column is not None:
                item["bank_key"] = _plain(columns[self.bank_key_column][i])
            elif demonstrations is not None and _has_pairs(demonstrations[i]):
                item["demonstrations"] = _plain(demonstrations[i])
            items.append(item)
        return items

    def results(self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[dict[str, Any]]:
        """The server's answer for each completion: `{"reward", "penalized_reward", "mean", "variance", "score",
        "extras"}` (blocking; the requests to different replicas run concurrently)."""
        items = self.items(prompts, completions, columns)
        shards = self.client.shard(items, self.max_items_per_request)
        send = lambda shard: self.client.score([items[i] for i in shard])
        try:
            if len(shards) == 1:
                answers = [send(shards[0])]
            else:
                with ThreadPoolExecutor(min(len(shards), 16), thread_name_prefix="remote-reward") as pool:
                    answers = list(pool.map(send, shards))
        except RewardServerError as error:
            raise RewardServerError(f"{self.__name__}: {error}", error.status, error.field) from None
        results: list[dict[str, Any]] = [{}] * len(items)
        for shard, answer in zip(shards, answers, strict=True):
            if len(answer) != len(shard):
                raise RewardServerError(f"{self.__name__}: {len(answer)} results for {len(shard)} completions.")
            for i, result in zip(shard, answer, strict=True):
                results[i] = result
        return results

    async def __call__(self, prompts, completions, completion_ids=None, **kwargs) -> list[float | None]:
        """TRL's reward-function call: one reward per completion (`None` where the server has none)."""
        prompts, completions, columns = check_batch(prompts, completions, columns_only(kwargs), self.__name__)
        results = await asyncio.to_thread(self.results, prompts, completions, **columns)
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            for key in sorted({key for result in results for key in (result.get("extras") or {})}):
                values = [result["extras"].get(key) for result in results if result.get("extras")]
                values = [value for value in values if value is not None]
                if values:
                    log_metric(f"{self.__name__}/{key}", float(np.mean(values)))
        return [penalized_reward(result) for result in results]  # what the trainer optimizes

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.__name__!r}, urls={self.client.urls!r})"


def _has_pairs(value: Any) -> bool:
    return value is not None and len(value) > 0


__all__ = ["RemoteReward"]
