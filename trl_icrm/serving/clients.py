# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Clients of the reward server (`trl-icrm serve`), standard library only, for the RLHF frameworks that call it.

- [`RewardClient`]: posts to one or several server replicas, with retries on connection errors and 503 (a full
  queue), none on other 4xx (a bad request stays bad). A request goes to the replica chosen by a hash of its prompt
  and demonstrations, so the G samples of one prompt meet on one replica, are batched together and share the
  encoding of their demonstrations; the next replicas are the fallbacks.
- [`reward_func`]: OpenRLHF's python-file reward (`--reward.remote_url /path/to/clients.py`): OpenRLHF loads this
  file and calls `reward_func(queries, prompts, labels)`; the servers are read from `TRL_ICRM_REWARD_URL`
  (comma-separated).
- [`compute_score`]: verl's custom reward function (`reward.custom_reward_function.path=pkg://trl_icrm.serving.clients`,
  `name=compute_score`): the prompt and the demonstrations come from the sample's `extra_info`.

This file imports nothing outside the standard library (OpenRLHF loads it by path, outside the package).

Example:

```python
from trl_icrm.serving.clients import RewardClient

client = RewardClient("http://127.0.0.1:8000,http://127.0.0.1:8001")
client.score([{"prompt": "2+2?", "completion": "4", "demonstrations": [...]}])  # [{"reward", "penalized_reward", "mean", ...}]
```
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from typing import Any


URL_ENV = "TRL_ICRM_REWARD_URL"
"""Environment variable with the reward server URL(s), comma-separated (for [`reward_func`] and [`compute_score`])."""

RETRY_STATUSES = (429, 502, 503, 504)
"""HTTP statuses worth retrying (the server is busy or restarting); any other error status is final."""

ENDPOINTS = ("/get_reward", "/score", "/health", "/stats")


class RewardServerError(RuntimeError):
    """The reward server refused a request (4xx: the request is wrong) or could not be reached after retries."""

    def __init__(self, message: str, status: int | None = None, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.field = field


def base_url(url: str) -> str:
    """`http://host:port` of a server URL given with or without an endpoint (`.../get_reward`) or a trailing slash."""
    url = url.strip().rstrip("/")
    for endpoint in ENDPOINTS:
        if url.endswith(endpoint):
            return url[: -len(endpoint)]
    return url


def split_urls(urls: str | Sequence[str] | None) -> list[str]:
    """Server base URLs from a comma-separated string or a list (default: the `TRL_ICRM_REWARD_URL` variable)."""
    if urls is None:
        urls = os.environ.get(URL_ENV, "")
    if isinstance(urls, str):
        urls = urls.split(",")
    found = [base_url(url) for url in urls if url and url.strip()]
    if not found:
        raise ValueError(f"No reward server URL: pass one (or several) or set {URL_ENV}=http://127.0.0.1:8000.")
    return found


class RewardClient:
    """HTTP client of one or several reward server replicas.

    Args:
        urls: Server URL(s): `"http://127.0.0.1:8000"`, a comma-separated list, or a list (default: `TRL_ICRM_REWARD_URL`).
        timeout: Seconds to wait for one answer.
        retries: Attempts per request (on connection errors and 429/502/503/504), cycling through the replicas.
        backoff: Seconds of the first pause between attempts (then twice as long each time, at most 10 s).
    """

    def __init__(
        self,
        urls: str | Sequence[str] | None = None,
        timeout: float = 180.0,
        retries: int = 5,
        backoff: float = 0.5,
    ):
        self.urls = split_urls(urls)
        self.timeout = timeout
        self.retries = max(1, retries)
        self.backoff = backoff

    def _replica_order(self, affinity: str | None) -> list[str]:
        start = zlib.crc32(affinity.encode("utf-8", "replace")) % len(self.urls) if affinity else 0
        return self.urls[start:] + self.urls[:start]

    def post(self, endpoint: str, payload: Mapping[str, Any], affinity: str | None = None) -> dict[str, Any]:
        """POST `payload` as JSON to `endpoint` of a replica (chosen by `affinity`), retrying busy or unreachable
        replicas on the next ones; returns the decoded answer."""
        body = json.dumps(payload).encode("utf-8")
        replicas = self._replica_order(affinity)
        last_error = "no attempt"
        for attempt in range(self.retries):
            url = replicas[attempt % len(replicas)] + endpoint
            request = urllib.request.Request(
                url, data=body, headers={"Content-Type": "application/json"}, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as error:
                detail, field = _error_detail(error)
                if error.code not in RETRY_STATUSES:
                    raise RewardServerError(f"{url} answered {error.code}: {detail}", error.code, field) from None
                last_error = f"{url} answered {error.code}: {detail}"
            except (urllib.error.URLError, ConnectionError, TimeoutError) as error:  # socket.timeout too
                last_error = f"{url}: {getattr(error, 'reason', error)}"
            except http.client.HTTPException as error:  # the server died mid-answer (e.g. IncompleteRead)
                last_error = f"{url}: {type(error).__name__}: {error}"
            if attempt + 1 < self.retries:
                time.sleep(min(self.backoff * 2**attempt, 10.0))
        raise RewardServerError(f"The reward server failed {self.retries} times; last: {last_error}")

    def get_reward(self, queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any]) -> dict[str, Any]:
        """OpenRLHF's request: `{"rewards", "scores", "extra_logs"}` of the queries (prompt + response)."""
        payload = {"query": list(queries), "prompts": list(prompts), "labels": list(labels)}
        affinity = _affinity(prompts[0] if prompts else "", labels[0] if labels else None)
        return self.post("/get_reward", payload, affinity)

    def score(self, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """`/score`: per item `{prompt, completion, demonstrations?, bank_key?}` its reward, mean, variance, score
        and extras."""
        first = items[0] if items else {}
        label = first.get("demonstrations", first.get("bank_key"))
        return self.post("/score", {"items": list(items)}, _affinity(first.get("prompt", ""), label))["results"]

    def shard(self, items: Sequence[Mapping[str, Any]], max_items: int = 256) -> list[list[int]]:
        """The `/score` requests for `items`, as lists of positions: the items of one prompt and demonstrations go to
        the same replica (the one [`score`] posts them to, by the same hash), at most `max_items` per request."""
        by_replica: dict[str, list[int]] = {}
        for i, item in enumerate(items):
            affinity = _affinity(item.get("prompt", ""), item.get("demonstrations", item.get("bank_key")))
            by_replica.setdefault(self._replica_order(affinity)[0], []).append(i)
        size = max(1, max_items)
        return [group[start : start + size] for group in by_replica.values() for start in range(0, len(group), size)]

    def health(self) -> dict[str, Any]:
        """`/health` of the first replica."""
        with urllib.request.urlopen(self.urls[0] + "/health", timeout=self.timeout) as response:
            return json.loads(response.read())


def _error_detail(error: urllib.error.HTTPError) -> tuple[str, str | None]:
    try:
        answer = json.loads(error.read() or b"{}")
    except (ValueError, OSError):
        return error.reason, None
    if isinstance(answer, dict):
        return str(answer.get("detail", error.reason)), answer.get("field")
    return str(answer), None


def _affinity(prompt: Any, label: Any) -> str:
    return json.dumps([prompt, label], sort_keys=True, default=str)


_CLIENTS: dict[tuple, RewardClient] = {}
_CLIENTS_LOCK = threading.Lock()


def get_client(urls: str | Sequence[str] | None = None, **kwargs: Any) -> RewardClient:
    """One shared [`RewardClient`] per set of URLs and settings (reward functions are called from many threads)."""
    key = (tuple(split_urls(urls)), tuple(sorted(kwargs.items())))
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = RewardClient(list(key[0]), **kwargs)
        return _CLIENTS[key]


# OpenRLHF
def reward_func(queries: list[str], prompts: list[str], labels: list[Any]) -> dict[str, Any]:
    """OpenRLHF's python-file reward function (`--reward.remote_url /path/to/trl_icrm/serving/clients.py`).

    OpenRLHF calls it with one sample at a time (the decoded prompt + response, the prompt and the `--data.label_key`
    value: the sample's demonstrations as JSON, or a bank key) and reads `rewards`, `scores` and `extra_logs`. The
    servers come from `TRL_ICRM_REWARD_URL`; the samples of one prompt go to the same replica.
    """
    return get_client().get_reward(queries, prompts, labels)


# verl
def _plain(value: Any) -> Any:
    """JSON-ready copy of a value read from a parquet row (numpy arrays and scalars to lists and numbers)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


VERL_ITEM_OPTIONS = ("prompt_key", "demonstrations_key", "bank_key_key", "label_from_ground_truth")
"""The keyword arguments of [`verl_item`] that verl's reward kwargs may set (the rest verl passes are ignored)."""


def verl_item_options(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The [`verl_item`] options among the keyword arguments a verl reward function was called with."""
    return {name: kwargs[name] for name in VERL_ITEM_OPTIONS if name in kwargs}


def verl_item(
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None,
    prompt_key: str = "prompt",
    demonstrations_key: str = "demonstrations",
    bank_key_key: str = "bank_key",
    label_from_ground_truth: bool = False,
) -> dict[str, Any]:
    """The `/score` item of one verl sample: the prompt from `extra_info[prompt_key]` (else `extra_info["question"]`;
    a string, or chat messages, then the response is the assistant's message), the response `solution_str`, and the demonstrations from `extra_info[demonstrations_key]` (a list, or its JSON)
    or a bank key from `extra_info[bank_key_key]` (with `label_from_ground_truth`, else from `ground_truth`)."""
    extra = _plain(dict(extra_info or {}))
    prompt = extra.get(prompt_key, extra.get("question"))
    if prompt is None:
        raise ValueError(
            f"compute_score needs the sample's prompt in extra_info[{prompt_key!r}] (verl passes only the response); "
            "add it to extra_info when building the dataset."
        )
    completion: Any = solution_str
    if isinstance(prompt, list):  # a conversational prompt: the response is the assistant's message
        completion = [{"role": "assistant", "content": solution_str}]
    item: dict[str, Any] = {"prompt": prompt, "completion": completion}
    label = extra.get(demonstrations_key)
    if label is None and extra.get(bank_key_key) is not None:
        item["bank_key"] = str(extra[bank_key_key])
        return item
    if label is None and label_from_ground_truth:
        label = _plain(ground_truth)
    if isinstance(label, str):
        text = label.strip()
        if text[:1] in ("[", "{"):
            label = json.loads(text)
        elif text:
            item["bank_key"] = text
            return item
        else:
            label = None
    if isinstance(label, Mapping):
        return {**item, **{k: v for k, v in label.items() if k in ("demonstrations", "bank_key")}}
    if label is not None:
        item["demonstrations"] = label
    return item


def compute_score(
    data_source: Any = None,
    solution_str: str = "",
    ground_truth: Any = None,
    extra_info: Mapping[str, Any] | None = None,
    url: str | Sequence[str] | None = None,
    prompt_key: str = "prompt",
    demonstrations_key: str = "demonstrations",
    bank_key_key: str = "bank_key",
    label_from_ground_truth: bool = False,
    timeout: float = 180.0,
    **kwargs: Any,
) -> dict[str, Any]:
    """verl's custom reward function: the reward of one response from the reward server.

    Configure verl with `reward.custom_reward_function.path=pkg://trl_icrm.serving.clients`,
    `reward.custom_reward_function.name=compute_score` and the server URL(s) in
    `+reward.custom_reward_function.reward_kwargs.url=http://127.0.0.1:8000` (or `TRL_ICRM_REWARD_URL`). Each
    dataset row carries its prompt and demonstrations in `extra_info` (see [`verl_item`]).

    Returns `{"score": reward, "reward_mean": ..., "reward_score": 0-1 score, "reward_variance": ...}` (verl uses
    `score` and logs the rest; the variance only for models that report one).
    """
    item = verl_item(
        solution_str, ground_truth, extra_info, prompt_key, demonstrations_key, bank_key_key, label_from_ground_truth
    )
    return verl_answer(get_client(url, timeout=timeout).score([item])[0])


def penalized_reward(result: Mapping[str, Any]) -> float | None:
    """The reward a trainer optimizes from one `/score` result: its `penalized_reward` (the server's penalty applied),
    or, from an older server that answers no such field, its `reward` (then the penalized one)."""
    return result["penalized_reward"] if "penalized_reward" in result else result["reward"]


def verl_answer(result: Mapping[str, Any]) -> dict[str, Any]:
    """verl's answer for one `/score` result: `{"score", "reward_mean", "reward_score", "reward_variance"?}`."""
    answer = {"score": penalized_reward(result), "reward_mean": result["mean"], "reward_score": result["score"]}
    if result.get("variance") is not None:
        answer["reward_variance"] = result["variance"]
    return answer


__all__ = [
    "URL_ENV",
    "RewardClient",
    "RewardServerError",
    "base_url",
    "compute_score",
    "get_client",
    "penalized_reward",
    "reward_func",
    "split_urls",
    "verl_answer",
    "verl_item",
    "verl_item_options",
]
