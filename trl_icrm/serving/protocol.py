# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The reward server's request and response formats: parsing, validation and answers, with no I/O.

Two request formats turn into the same list of [`ScoreItem`] (prompt, completion, demonstrations):

- OpenRLHF's remote reward model, `POST /get_reward` ([`parse_get_reward`]):
  `{"query": [...], "prompts": [...], "labels": [...]}`. `query[i]` is the decoded prompt + response; the response
  is `query[i][len(prompts[i]):]` (the query must start with its prompt). `labels[i]` carries the sample's
  demonstrations: a JSON list of `{prompt, chosen, rejected}` (as a string or as a list), a key into the server's
  demonstration bank, an object `{"demonstrations": [...]}` or `{"bank_key": "..."}`, or `""` / `null` for none.
  The answer ([`get_reward_response`]) is `{"rewards": [...], "scores": [...], "extra_logs": {...}}`.
- the raw scoring endpoint, `POST /score` ([`parse_score`]): `{"items": [{"prompt", "completion",
  "demonstrations"?, "bank_key"?}, ...]}`, answered by [`score_response`] with each item's point reward, penalized
  reward (the server's penalty applied), posterior mean and variance.

Anything wrong in a request raises a [`RequestError`] that names the field (`labels[3]`,
`items[0].demonstrations[1].chosen`) and carries the HTTP status: 400 for a body that is not JSON, 413 for a body
over the size limit, 422 for a missing field, a wrong type, a bad demonstration or a field over its limit.
Demonstrations are data: they are checked and rendered as text, never evaluated.

Example:

```python
>>> from trl_icrm.serving.protocol import DemonstrationPolicy, parse_get_reward
>>> from trl_icrm.serving.config import ServingConfig
>>> items = parse_get_reward(
...     {"query": ["Q: 2+2?\\nA: 4"], "prompts": ["Q: 2+2?\\n"],
...      "labels": ['[{"prompt": "Q: 1+1?", "chosen": "2", "rejected": "3"}]']},
...     ServingConfig(), DemonstrationPolicy(),
... )
>>> items[0].completion, len(items[0].demonstrations)
('A: 4', 1)
```
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..demonstrations import DEMONSTRATION_KEYS, DemonstrationBank, as_demonstration
from .config import ServingConfig


class RequestError(ValueError):
    """A request the server rejects: `field` names what is wrong, `status` is the HTTP status of the answer."""

    def __init__(self, field: str, message: str, status: int = 422, headers: Mapping[str, str] | None = None):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status
        self.headers = dict(headers or {})

    def to_json(self) -> dict[str, Any]:
        return {"detail": str(self), "field": self.field}


@dataclass
class ScoreItem:
    """One completion to score: its prompt and completion (strings or chat messages) and its demonstrations."""

    prompt: Any
    completion: Any
    demonstrations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ItemResult:
    """The answer for one completion: the point reward, the posterior mean and variance on the model's scale, a 0-1
    score, the model's other per-completion values, and the penalized reward (the server's penalty applied: what a
    trainer optimizes; the point reward when the server has no penalty). The words as in `trl_icrm.rewards.base`."""

    reward: float | None
    mean: float | None
    variance: float | None
    score: float | None
    penalized_reward: float | None
    extras: dict[str, float | None] = field(default_factory=dict)


@dataclass
class DemonstrationPolicy:
    """How a request's labels become demonstrations for the served model.

    Attributes:
        bank: `{key: [pairs]}` of the server's demonstration bank (a label that is a key draws from it).
        num_demonstrations: Pairs drawn for a bank key (fewer if the key has fewer).
        seed: Seed of the draws, with the key and the prompt: the draw of `ICRMReward`'s bank mode, by the same
            [`~trl_icrm.demonstrations.DemonstrationBank.draw_for_key`].
        used: Whether the model reads demonstrations (ICRM); otherwise labels and demonstrations are ignored.
        required: Whether a completion without demonstrations is an error (ICRM without zero-shot scoring).
    """

    bank: Mapping[str, Sequence[Mapping[str, Any]]] | DemonstrationBank = field(default_factory=dict)
    num_demonstrations: int = 4
    seed: int = 0
    used: bool = True
    required: bool = False

    def __post_init__(self):
        if not isinstance(self.bank, DemonstrationBank):
            self.bank = DemonstrationBank(self.bank)

    def draw(self, key: str, prompt: Any, where: str) -> list[dict[str, Any]]:
        """The demonstrations drawn for bank key `key` and `prompt`."""
        if key not in self.bank:
            if not self.bank:
                raise RequestError(
                    where,
                    f"{_short(key)!r} is neither a JSON list of demonstrations nor a bank key (this server has no "
                    "demonstration bank; start it with --demonstration_bank).",
                )
            raise RequestError(where, f"unknown demonstration bank key {_short(key)!r}.")
        return [dict(pair) for pair in self.bank.draw_for_key(key, self.num_demonstrations, self.seed, prompt)]

    def finish(self, demonstrations: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
        """The demonstrations the model gets for one completion (none if it reads none)."""
        if not self.used:
            return []
        if not demonstrations and self.required:
            raise RequestError(
                where,
                "no demonstrations: this ICRM reward model needs some (a JSON list of {prompt, chosen, rejected} or a "
                "bank key), or a server started with --allow_zero_shot.",
            )
        return demonstrations


# Decoding
def decode_json(body: bytes) -> Any:
    """The JSON value of a request body (400 if it is not JSON)."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise RequestError("body", f"malformed JSON ({error}).", status=400)
    except RecursionError:
        raise RequestError("body", "malformed JSON (nested too deeply).", status=400)


def check_body_size(size: int, config: ServingConfig) -> None:
    """413 if a body of `size` bytes is over `config.max_body_bytes`."""
    if size > config.max_body_bytes:
        raise RequestError(
            "body", f"{size} bytes or more, over the limit of {config.max_body_bytes} (--max_body_bytes).", status=413
        )


# Field checks
def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _require(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise RequestError(_join(where, key), "missing (required).")
    return obj[key]


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def check_object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RequestError(where or "body", f"expected a JSON object, got {_type_name(value)}.")
    return value


def check_list(value: Any, where: str, config: ServingConfig, limit: int | None = None) -> list[Any]:
    if not isinstance(value, list):
        raise RequestError(where, f"expected a JSON list, got {_type_name(value)}.")
    limit = config.max_items_per_request if limit is None else limit
    if len(value) > limit:
        flag = "--max_items_per_request" if limit == config.max_items_per_request else "the limit"
        raise RequestError(where, f"{len(value)} entries, over the limit of {limit} ({flag}).")
    return value


def check_string(value: Any, where: str, config: ServingConfig) -> str:
    """A string within `--max_text_chars` that is valid Unicode (JSON's `\\ud800` escapes decode to lone surrogates,
    which no tokenizer encodes)."""
    if not isinstance(value, str):
        raise RequestError(where, f"expected a string, got {_type_name(value)}.")
    if len(value) > config.max_text_chars:
        raise RequestError(
            where, f"{len(value)} characters, over the limit of {config.max_text_chars} (--max_text_chars)."
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise RequestError(
            where, f"not valid Unicode: a lone surrogate {value[error.start]!r} at character {error.start}."
        ) from None
    return value


def check_text(value: Any, where: str, config: ServingConfig) -> str | list[dict[str, str]]:
    """A prompt or completion: a string, or a non-empty list of chat messages `{"role", "content"}` (strings)."""
    if isinstance(value, str):
        return check_string(value, where, config)
    if not isinstance(value, list):
        raise RequestError(where, f"expected a string or a list of chat messages, got {_type_name(value)}.")
    if not value:
        raise RequestError(where, "an empty list of chat messages.")
    total = 0
    messages = []
    for j, message in enumerate(value):
        at = f"{where}[{j}]"
        message = check_object(message, at)
        content = check_string(_require(message, "content", at), f"{at}.content", config)
        role = check_string(message.get("role", "user"), f"{at}.role", config)
        total += len(content)
        messages.append({"role": role, "content": content})
    if total > config.max_text_chars:
        raise RequestError(where, f"{total} characters, over the limit of {config.max_text_chars} (--max_text_chars).")
    return messages


def check_demonstrations(value: Any, where: str, config: ServingConfig) -> list[dict[str, Any]]:
    """A list of `{prompt, chosen, rejected}` pairs (each a string or chat messages), as plain dicts."""
    if not isinstance(value, list):
        raise RequestError(where, f"expected a list of {{prompt, chosen, rejected}} pairs, got {_type_name(value)}.")
    if len(value) > config.max_demonstrations:
        raise RequestError(
            where,
            f"{len(value)} demonstrations, over the limit of {config.max_demonstrations} (--max_demonstrations).",
        )
    pairs = []
    for j, pair in enumerate(value):
        at = f"{where}[{j}]"
        pair = check_object(pair, at)
        pairs.append({key: check_text(_require(pair, key, at), f"{at}.{key}", config) for key in DEMONSTRATION_KEYS})
    return pairs


def parse_label(
    label: Any, prompt: Any, where: str, config: ServingConfig, policy: DemonstrationPolicy
) -> list[dict[str, Any]]:
    """The demonstrations a label carries (OpenRLHF's `labels[i]`, verl's `extra_info`).

    A label is a JSON list of pairs (as a string or as a list), an object `{"demonstrations": [...]}` or
    `{"bank_key": "..."}`, a bank key (a string or an integer), or `""` / `null` for none.
    """
    if label is None:
        return []
    if isinstance(label, list):
        return check_demonstrations(label, where, config)
    if isinstance(label, Mapping):
        unknown = sorted(set(label) - {"demonstrations", "bank_key"})
        if unknown:
            raise RequestError(where, f"unknown keys {unknown}; a label object has 'demonstrations' or 'bank_key'.")
        if "demonstrations" in label and "bank_key" in label:
            raise RequestError(where, "give either 'demonstrations' or 'bank_key', not both.")
        if "bank_key" in label:
            key = label["bank_key"]
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise RequestError(f"{where}.bank_key", f"expected a string, got {_type_name(key)}.")
            return policy.draw(str(key), prompt, f"{where}.bank_key")
        return check_demonstrations(label.get("demonstrations"), f"{where}.demonstrations", config)
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        raise RequestError(where, f"expected a string (JSON demonstrations or a bank key), got {_type_name(label)}.")
    if isinstance(label, int):
        return policy.draw(str(label), prompt, where)
    text = label.strip()
    if not text:
        return []
    if text[0] in "[{":  # JSON demonstrations: bounded by the body size, each text by --max_text_chars
        try:
            decoded = json.loads(text)
        except (ValueError, RecursionError) as error:
            raise RequestError(where, f"looks like JSON but is malformed ({error}).")
        if not isinstance(decoded, (list, Mapping)):
            raise RequestError(where, f"expected JSON demonstrations, got {_type_name(decoded)}.")
        return parse_label(decoded, prompt, where, config, policy)
    return policy.draw(check_string(text, where, config), prompt, where)


def split_query(query: str, prompt: str, where: str) -> str:
    """The response part of an OpenRLHF query: what follows the prompt (the query must start with it)."""
    if query.startswith(prompt):
        return query[len(prompt) :]
    common = 0
    for a, b in zip(query, prompt, strict=False):
        if a != b:
            break
        common += 1
    raise RequestError(
        where,
        f"does not start with its prompt (they differ from character {common}: query {query[common : common + 20]!r}"
        f" vs prompt {prompt[common : common + 20]!r}); the response is the query after the prompt.",
    )


# Requests
def parse_get_reward(payload: Any, config: ServingConfig, policy: DemonstrationPolicy) -> list[ScoreItem]:
    """The completions of an OpenRLHF `/get_reward` request `{"query", "prompts", "labels"}`."""
    body = check_object(payload, "body")
    queries = check_list(_require(body, "query", ""), "query", config)
    if not queries:
        raise RequestError("query", "an empty list (nothing to score).")
    prompts = check_list(_require(body, "prompts", ""), "prompts", config)
    if len(prompts) != len(queries):
        raise RequestError("prompts", f"{len(prompts)} prompts for {len(queries)} queries (one per query).")
    labels = body.get("labels")
    if labels is None:
        labels = [None] * len(queries)
    labels = check_list(labels, "labels", config)
    if len(labels) != len(queries):
        raise RequestError("labels", f"{len(labels)} labels for {len(queries)} queries (one per query).")
    items = []
    for i, (query, prompt, label) in enumerate(zip(queries, prompts, labels, strict=True)):
        query = check_string(query, f"query[{i}]", config)
        prompt = check_string(prompt, f"prompts[{i}]", config)
        completion = split_query(query, prompt, f"query[{i}]")
        if not policy.used:  # a model without demonstrations: the label may be anything (e.g. a math answer)
            items.append(ScoreItem(prompt, completion))
            continue
        demonstrations = parse_label(label, prompt, f"labels[{i}]", config, policy)
        items.append(ScoreItem(prompt, completion, policy.finish(demonstrations, f"labels[{i}]")))
    return items


SCORE_ITEM_KEYS = ("prompt", "completion", "demonstrations", "bank_key")


def parse_score(payload: Any, config: ServingConfig, policy: DemonstrationPolicy) -> list[ScoreItem]:
    """The completions of a `/score` request `{"items": [{"prompt", "completion", "demonstrations"?,
    "bank_key"?}]}`."""
    body = check_object(payload, "body")
    unknown = sorted(set(body) - {"items"})
    if unknown:
        raise RequestError(unknown[0], "unknown field (a /score request has 'items').")
    raw_items = check_list(_require(body, "items", ""), "items", config)
    if not raw_items:
        raise RequestError("items", "an empty list (nothing to score).")
    items = []
    for i, raw in enumerate(raw_items):
        at = f"items[{i}]"
        raw = check_object(raw, at)
        unknown = sorted(set(raw) - set(SCORE_ITEM_KEYS))
        if unknown:
            raise RequestError(f"{at}.{unknown[0]}", f"unknown field (an item has {list(SCORE_ITEM_KEYS)}).")
        prompt = check_text(_require(raw, "prompt", at), f"{at}.prompt", config)
        completion = check_text(_require(raw, "completion", at), f"{at}.completion", config)
        if isinstance(prompt, str) != isinstance(completion, str):
            raise RequestError(
                f"{at}.prompt", "the prompt and the completion must both be strings or both be chat messages."
            )
        if not policy.used:  # a model without demonstrations ignores them
            items.append(ScoreItem(prompt, completion))
            continue
        if raw.get("demonstrations") is not None and raw.get("bank_key") is not None:
            raise RequestError(at, "give either 'demonstrations' or 'bank_key', not both.")
        if raw.get("bank_key") is not None:
            key = raw["bank_key"]
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise RequestError(f"{at}.bank_key", f"expected a string, got {_type_name(key)}.")
            demonstrations = policy.draw(str(key), prompt, f"{at}.bank_key")
        elif raw.get("demonstrations") is not None:
            demonstrations = check_demonstrations(raw["demonstrations"], f"{at}.demonstrations", config)
        else:
            demonstrations = []
        items.append(ScoreItem(prompt, completion, policy.finish(demonstrations, f"{at}.demonstrations")))
    return items


# Answers
def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def unit_score(mean: np.ndarray, scale: str) -> np.ndarray:
    """A 0-1 score of posterior means: the mean itself on the probability scale, its sigmoid on any other."""
    mean = np.asarray(mean, dtype=float)
    if scale == "probability":
        return np.clip(mean, 0.0, 1.0)
    return 1.0 / (1.0 + np.exp(-mean))


def item_results(posterior, penalty: str | None, penalty_coef: float) -> list[ItemResult]:
    """Per-completion answers of a reward posterior (`trl_icrm.rewards.RewardPosterior`): its point reward, and the
    penalized reward under the server's penalty."""
    penalized = posterior.penalized(penalty, penalty_coef)
    scores = unit_score(posterior.mean, posterior.scale)
    results = []
    for i in range(len(posterior)):
        variance = None if posterior.variance is None else _finite(posterior.variance[i])
        extras = {key: _finite(values[i]) for key, values in posterior.extras.items() if len(values) == len(posterior)}
        values = (_finite(posterior.reward[i]), _finite(posterior.mean[i]), variance, _finite(scores[i]))
        results.append(ItemResult(*values, _finite(penalized[i]), extras))
    return results


def _mean(values: Sequence[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def get_reward_response(results: Sequence[ItemResult]) -> dict[str, Any]:
    """OpenRLHF's answer: `{"rewards", "scores", "extra_logs"}`. `rewards` are the penalized rewards (what the RL
    engine optimizes); `extra_logs` holds the means over the request's completions of the point reward
    (`point_reward`: OpenRLHF logs its own `reward`), the posterior mean and variance and the model's other values
    (e.g. ICRM's confidence)."""
    extra_logs: dict[str, float] = {}
    columns: dict[str, list[float | None]] = {"point_reward": [r.reward for r in results]}
    columns["reward_mean"] = [r.mean for r in results]
    if any(r.variance is not None for r in results):
        columns["reward_variance"] = [r.variance for r in results]
    for result in results:
        for key, value in result.extras.items():
            columns.setdefault(key, []).append(value)
    for key, values in columns.items():
        mean = _mean(values)
        if mean is not None:
            extra_logs[key] = mean
    rewards = [r.penalized_reward for r in results]
    return {"rewards": rewards, "scores": [r.score for r in results], "extra_logs": extra_logs}


def score_response(
    results: Sequence[ItemResult], scale: str, penalty: str | None, penalty_coef: float = 1.0
) -> dict[str, Any]:
    """The `/score` answer: per item its point reward, penalized reward, mean, variance, 0-1 score and extras."""
    fields = ("reward", "penalized_reward", "mean", "variance", "score", "extras")
    return {
        "results": [{name: getattr(r, name) for name in fields} for r in results],
        "scale": scale,
        "penalty": penalty,
        "penalty_coef": penalty_coef,
    }


# Banks
def bank_from_json(data: Any, key_field: str = "group", where: str = "demonstration bank") -> dict[str, list[dict]]:
    """A demonstration bank from decoded JSON: an object `{key: [pairs]}`, or a list of preference rows
    `{prompt, chosen, rejected, <key_field>}` grouped by `key_field`. Keys are strings."""
    unlimited = ServingConfig(max_text_chars=2**62, max_demonstrations=2**62)
    if isinstance(data, Mapping):
        bank = {}
        for key, pairs in data.items():
            try:
                bank[str(key)] = check_demonstrations(pairs, f"{where}[{key!r}]", unlimited)
            except RequestError as error:
                raise ValueError(str(error)) from None
            if not bank[str(key)]:
                raise ValueError(f"{where}[{key!r}]: no demonstrations (a bank key needs at least one pair).")
        return bank
    if isinstance(data, list):
        bank: dict[str, list[dict]] = {}
        keys: dict[str, Any] = {}  # each key as the rows give it
        for i, row in enumerate(data):
            if not isinstance(row, Mapping) or key_field not in row:
                raise ValueError(f"{where}: row {i} is not an object with a {key_field!r} field (--bank_key).")
            key = row[key_field]
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise ValueError(f"{where}: row {i}: {key_field!r} is {_type_name(key)}; a bank key is a string.")
            if keys.setdefault(str(key), key) != key:
                raise ValueError(
                    f"{where}: row {i}: {key_field!r} {key!r} and an earlier {keys[str(key)]!r} would be the same "
                    "bank key; give keys as strings."
                )
            missing = [name for name in DEMONSTRATION_KEYS if name not in row]
            if missing:
                raise ValueError(f"{where}: row {i} has no {missing[0]!r}.")
            pair = as_demonstration(row)
            try:
                check_demonstrations([pair], f"{where}, row {i}", unlimited)
            except RequestError as error:
                raise ValueError(str(error)) from None
            bank.setdefault(str(key), []).append(pair)
        return bank
    raise ValueError(f"{where}: expected a JSON object {{key: [pairs]}} or a list of rows, got {_type_name(data)}.")


__all__ = [
    "DemonstrationPolicy",
    "ItemResult",
    "RequestError",
    "ScoreItem",
    "bank_from_json",
    "check_body_size",
    "check_demonstrations",
    "check_text",
    "decode_json",
    "get_reward_response",
    "item_results",
    "parse_get_reward",
    "parse_label",
    "parse_score",
    "score_response",
    "split_query",
    "unit_score",
]
